"""The XenServer backend's settings, read from the OCCI_XENSERVER_* options (lower-case, no
prefix). Pure parsing, no XenAPI calls; backends/README.md lists every option. The password is
never part of a repr or a message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: which templates are offered as os_tpl mixins
TEMPLATE_SOURCES = ("all", "custom")


class ConfigError(ValueError):
    """A xenserver setting has a value the backend cannot use."""


@dataclass(frozen=True)
class TemplateSpec:
    """A resource_tpl from settings: "term:cores:memory_gb"."""

    term: str
    cores: int
    memory: float


def parse_templates(value: Any) -> list[TemplateSpec]:
    """ "xlarge:8:32, tiny:1:0.5" -> TemplateSpecs (comma or whitespace separated)."""
    out: list[TemplateSpec] = []
    for item in str(value or "").replace(",", " ").split():
        parts = item.split(":")
        try:
            term, cores, memory = parts[0].strip(), int(parts[1]), float(parts[2])
            if len(parts) != 3 or not term or cores < 1 or memory <= 0:
                raise ValueError
        except (ValueError, IndexError):
            raise ConfigError(
                f"xenserver_resource_templates: {item!r} is not term:cores:memory_gb"
            ) from None
        out.append(TemplateSpec(term, cores, memory))
    return out


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"not a yes/no value: {value!r}")


@dataclass(frozen=True)
class XenConfig:
    #: the pool master's URL (https://master.example.org; http:// for a test server)
    url: str = ""
    user: str = "root"
    password: str = field(default="", repr=False)
    #: verify the master's TLS certificate (off only for self-signed test pools)
    verify_tls: bool = True
    #: the SR (name label or uuid) for storage VDIs and provisioned disks; "" the pool's default
    sr: str = ""
    #: the templates offered as os_tpl: all, custom (those not shipped with XenServer), or
    #: tag:<name> (templates carrying that tag)
    templates: str = "all"
    #: the template of a compute created without an os_tpl (name label)
    default_template: str = "Other install media"
    #: the network (name label) of a networkinterface without a target; "" the first one
    #: not made by the server
    external_network: str = ""
    #: seconds an operation waits for its Async task before answering Pending
    task_wait: float = 1.0
    #: seconds after which a Pending is polled
    poll_after: float = 0.5
    #: vCPU / memory (GB) headroom: VCPUs_max and memory_static_max are at least these, so
    #: that a running VM can grow up to them without a halt
    max_vcpus: int = 0
    max_memory: float = 0.0
    #: seconds a XenAPI call may take before the master counts as not answering
    timeout: float = 60.0
    #: seconds an event.from call blocks (the watcher's stop waits at most this long)
    event_timeout: float = 10.0
    os_tpl_scheme: str = "http://occi.xenserver.local/os_tpl#"
    resource_tpl_scheme: str = "http://occi.xenserver.local/resource_tpl#"
    resource_templates: tuple[TemplateSpec, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> XenConfig:
        s = {k.lower(): v for k, v in settings.items()}

        def get(name: str, default: Any = None) -> Any:
            value = s.get("xenserver_" + name)
            return default if value is None or value == "" else value

        templates = str(get("templates", "all")).strip()
        if templates not in TEMPLATE_SOURCES and not (
            templates.startswith("tag:") and len(templates) > 4
        ):
            raise ConfigError(
                f"xenserver_templates must be all, custom or tag:<name>, not {templates!r}"
            )
        try:
            config = cls(
                url=str(get("url", "")).rstrip("/"),
                user=str(get("user", "root")),
                password=str(get("password", "")),
                verify_tls=_flag(get("verify_tls"), True),
                sr=str(get("sr", "")),
                templates=templates,
                default_template=str(get("default_template", cls.default_template)),
                external_network=str(get("network", "")),
                task_wait=float(get("task_wait", 1.0)),
                poll_after=float(get("poll_after", 0.5)),
                max_vcpus=int(get("max_vcpus", 0)),
                max_memory=float(get("max_memory", 0)),
                event_timeout=float(get("event_timeout", 10.0)),
                timeout=float(get("timeout", 60.0)),
                os_tpl_scheme=str(get("os_tpl_scheme", cls.os_tpl_scheme)),
                resource_tpl_scheme=str(get("resource_tpl_scheme", cls.resource_tpl_scheme)),
                resource_templates=tuple(parse_templates(get("resource_templates"))),
                extra={k: v for k, v in s.items() if k.startswith("xenserver_")},
            )
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"a xenserver setting has a bad value: {exc}") from None
        if not config.url.startswith(("http://", "https://")):
            raise ConfigError("xenserver_url must be the pool master's http(s):// URL")
        if (
            config.task_wait < 0
            or config.poll_after <= 0
            or config.event_timeout <= 0
            or config.timeout <= 0
        ):
            raise ConfigError(
                "xenserver_task_wait, _poll_after, _event_timeout and _timeout are seconds"
            )
        return config

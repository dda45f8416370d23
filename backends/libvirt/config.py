"""The libvirt backend's settings, read from the OCCI_LIBVIRT_* options (lower-case, no prefix).

Pure parsing; no libvirt calls. README.md in backends/ lists every option.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DOMAIN_TYPES = ("kvm", "qemu")


class ConfigError(ValueError):
    """A libvirt setting has a value the backend cannot use."""


@dataclass(frozen=True)
class TemplateSpec:
    """A resource_tpl from settings: "term:cores:memory_gb[:disk_gb]"."""

    term: str
    cores: int
    memory: float
    disk: float | None = None


def parse_templates(value: Any) -> list[TemplateSpec]:
    """ "xlarge:8:32, tiny:1:0.125:1" -> TemplateSpecs (comma or whitespace separated)."""
    if not value:
        return []
    out: list[TemplateSpec] = []
    for item in str(value).replace(",", " ").split():
        parts = item.split(":")
        try:
            if len(parts) not in (3, 4):
                raise ValueError
            term = parts[0].strip()
            cores = int(parts[1])
            memory = float(parts[2])
            disk = float(parts[3]) if len(parts) == 4 else None
            if not term or cores < 1 or memory <= 0 or (disk is not None and disk < 0):
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"libvirt_templates: {item!r} is not term:cores:memory_gb[:disk_gb]"
            ) from None
        out.append(TemplateSpec(term, cores, memory, disk))
    return out


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class LibvirtConfig:
    uri: str = "qemu:///system"
    domain_type: str = "kvm"
    #: pool for storage volumes, root disks and cloud-init seeds
    pool: str = "default"
    #: create the volume pool as a dir pool at this path when it does not exist
    pool_path: str | None = None
    #: pool whose volumes are the os_tpl images (may be the same as `pool`)
    image_pool: str = "default"
    image_pool_path: str | None = None
    #: extra resource_tpl mixins
    templates: tuple[TemplateSpec, ...] = ()
    #: where each domain's serial console is written (occi-<id>.log); "" for a pty console
    console_dir: str = "/var/log/libvirt/qemu"
    #: seconds a graceful/ACPI stop may take before the state message says it is overdue
    shutdown_timeout: float = 120.0
    #: the highest vCPU count a domain can be given live (hot-plug headroom)
    max_vcpus: int = 0
    #: the highest memory (GB) a domain can be given live (balloon headroom); 0: its own size
    max_memory: float = 0.0
    #: machine type (e.g. pc, q35); None lets libvirt choose
    machine: str | None = None
    #: scheme of the os_tpl / resource_tpl mixins this backend offers
    os_tpl_scheme: str = "http://occi.libvirt.local/os_tpl#"
    resource_tpl_scheme: str = "http://occi.libvirt.local/resource_tpl#"
    #: cloud-init seed format: iso (NoCloud, label cidata) or none
    seed: str = "iso"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> LibvirtConfig:
        s = {k.lower(): v for k, v in settings.items()}

        def get(name: str, default: Any = None) -> Any:
            value = s.get("libvirt_" + name)
            return default if value is None or value == "" else value

        domain_type = str(get("domain_type", "kvm")).lower()
        if domain_type not in (*DOMAIN_TYPES, "test"):
            raise ConfigError(f"libvirt_domain_type must be kvm or qemu, not {domain_type!r}")
        seed = str(get("seed", "iso")).lower()
        if seed not in ("iso", "none"):
            raise ConfigError(f"libvirt_seed must be iso or none, not {seed!r}")
        pool = str(get("pool", "default"))
        try:
            return cls(
                uri=str(get("uri", "qemu:///system")),
                domain_type=domain_type,
                pool=pool,
                pool_path=get("pool_path"),
                image_pool=str(get("image_pool", pool)),
                image_pool_path=get("image_pool_path"),
                templates=tuple(parse_templates(get("templates"))),
                console_dir=str(s.get("libvirt_console_dir", "/var/log/libvirt/qemu") or ""),
                shutdown_timeout=float(get("shutdown_timeout", 120)),
                max_vcpus=int(get("max_vcpus", 0)),
                max_memory=float(get("max_memory", 0)),
                machine=get("machine"),
                os_tpl_scheme=str(get("os_tpl_scheme", cls.os_tpl_scheme)),
                resource_tpl_scheme=str(get("resource_tpl_scheme", cls.resource_tpl_scheme)),
                seed=seed,
                extra={k: v for k, v in s.items() if k.startswith("libvirt_")},
            )
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"a libvirt setting has a bad number: {exc}") from None

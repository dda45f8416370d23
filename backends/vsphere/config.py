"""The vSphere backend's settings, read from the OCCI_VSPHERE_* options (lower-case, no prefix).

Pure parsing; no pyvmomi. backends/README.md lists every option. The password is a secret: it
never appears in a repr, a log line or an error message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A vSphere setting has a value the backend cannot use."""


def _flag(value: Any, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class VsphereConfig:
    #: the SDK endpoint, https://vcenter.example.org/sdk
    url: str
    user: str
    password: str = field(repr=False)
    #: skip TLS certificate verification (self-signed vCenter, the simulator)
    insecure: bool = False
    #: a CA bundle to verify the endpoint's certificate with
    ca_file: str | None = None
    #: datacenter name (None: the only one, or the first)
    datacenter: str | None = None
    #: cluster (vCenter) whose hosts this backend drives; None: every host of the datacenter
    cluster: str | None = None
    #: one host by name (a standalone ESXi, or one host of a vCenter)
    host: str | None = None
    #: datastore for VM files and virtual disks (None: the first one of the datacenter)
    datastore: str | None = None
    #: VM folder path under the datacenter's vmFolder (made when missing); None: vmFolder
    folder: str | None = None
    #: resource pool name; None: the cluster's (or host's) root pool
    resource_pool: str | None = None
    #: distributed switch for the port groups of OCCI networks (None: the first one, else
    #: standard port groups on the hosts' vSwitch below)
    dvswitch: str | None = None
    vswitch: str = "vSwitch0"
    #: VMs are made with CPU and memory hot-add on (resizes of running VMs apply live)
    hot_add: bool = True
    #: seconds an operation waits for its vSphere task before answering Pending
    task_wait: float = 10.0
    #: seconds a guest shutdown may take before the backend powers the VM off
    shutdown_timeout: float = 120.0
    #: seconds of one WaitForUpdatesEx call of the event thread
    event_wait: int = 5
    os_tpl_scheme: str = "http://occi.vsphere.local/os_tpl#"
    resource_tpl_scheme: str = "http://occi.vsphere.local/resource_tpl#"

    @property
    def address(self) -> tuple[str, int, str]:
        """(host, port, path) of the endpoint."""
        parts = urlsplit(self.url)
        return parts.hostname or "", parts.port or 443, parts.path or "/sdk"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> VsphereConfig:
        s = {k.lower(): v for k, v in settings.items()}

        def get(name: str, default: Any = None) -> Any:
            value = s.get("vsphere_" + name)
            return default if value is None or value == "" else value

        url = str(get("url", ""))
        if "://" not in url:
            url = f"https://{url}/sdk" if url else ""
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigError("vsphere_url must be the SDK endpoint, https://<vcenter>/sdk")
        user = get("user") or parts.username
        password = get("password") or parts.password
        if not user or password is None:
            raise ConfigError("vsphere_user and vsphere_password are required")
        if parts.username or parts.password:  # credentials go in their own settings
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            url = parts._replace(netloc=netloc).geturl()
        try:
            return cls(
                url=url,
                user=str(user),
                password=str(password),
                insecure=_flag(get("insecure")),
                ca_file=get("ca_file"),
                datacenter=get("datacenter"),
                cluster=get("cluster"),
                host=get("host"),
                datastore=get("datastore"),
                folder=get("folder"),
                resource_pool=get("resource_pool"),
                dvswitch=get("dvswitch"),
                vswitch=str(get("vswitch", "vSwitch0")),
                hot_add=_flag(get("hot_add"), True),
                task_wait=max(0.0, float(get("task_wait", 10))),
                shutdown_timeout=max(0.0, float(get("shutdown_timeout", 120))),
                event_wait=max(1, int(get("event_wait", 5))),
                os_tpl_scheme=str(get("os_tpl_scheme", cls.os_tpl_scheme)),
                resource_tpl_scheme=str(get("resource_tpl_scheme", cls.resource_tpl_scheme)),
            )
        except ValueError as exc:
            raise ConfigError(f"a vSphere setting has a bad number: {exc}") from None

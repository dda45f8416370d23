"""Networks as port groups `occi-<id>`: on the distributed switch (up and down block or
unblock its ports), else a standard port group on the vSwitch of every host (up and down are
OCCI's state then, kept in the entity: a standard port group cannot block its ports).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyVmomi import vim

from backends import common
from backends.base import (
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Pending,
    PlatformError,
    Unsupported,
)
from backends.vsphere.core import Core
from occi.model import Resource

DVS = vim.dvs.VmwareDistributedVirtualSwitch
GROUP_PATHS = [
    "config.name",
    "config.numPorts",
    "config.autoExpand",
    "config.type",
    "config.configVersion",
    "config.defaultPortConfig",
]


def _on(host: Any, fn: Callable[[Any], Any]) -> Callable[[], Any]:
    """`fn(host)` as a call without arguments (for Session.call in a loop over hosts)."""
    return lambda: fn(host)


class NetworkOps(Core):
    def portgroup(self, name: str) -> Any:
        """The port group (or network) named `name`, None when there is none."""
        found = self.session.call(
            f"looking for port group {name}",
            lambda: self.session.all_of(vim.Network, ["name"]),
        )
        return next((obj for obj, p in found if p.get("name") == name), None)

    def _blocked(self, group: Any) -> bool | None:
        """Whether a distributed port group's ports are blocked (None: a standard one)."""
        if not isinstance(group, vim.dvs.DistributedVirtualPortgroup):
            return None
        p = self.session.call(
            "reading a port group", lambda: self.session.props(group, ["config.defaultPortConfig"])
        )
        blocked = getattr(p.get("config.defaultPortConfig"), "blocked", None)
        return bool(getattr(blocked, "value", False))

    def network_outcome(self, entity: Resource, state: str | None = None) -> Outcome:
        name = common.platform_name(entity)
        group = self.portgroup(name)
        if group is None:
            raise NotFoundOnPlatform(f"port group {name} does not exist")
        blocked = self._blocked(group)
        if blocked is not None:
            state = "inactive" if blocked else "active"
            message = f"{state}; distributed port group {name}" + (
                " (ports blocked)" if blocked else ""
            )
        else:
            state = state or str(entity.attributes.get("occi.network.state") or "inactive")
            message = f"{state}; port group {name}"
        return Outcome({"occi.network.state": state, "occi.network.state.message": message})

    def network_create(self, entity: Resource) -> Outcome | Pending:
        name = common.platform_name(entity)
        if self.portgroup(name) is not None:
            return self.network_outcome(entity)
        vlan = int(entity.attributes.get("occi.network.vlan") or 0)
        dvs = self.session.call("finding the distributed switch", lambda: self.session.dvswitch)
        if dvs is not None:
            setting = DVS.VmwarePortConfigPolicy(
                vlan=DVS.VlanIdSpec(vlanId=vlan, inherited=False),
                blocked=vim.BoolPolicy(inherited=False, value=True),  # inactive until up
            )
            spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
                name=name,
                type="earlyBinding",
                numPorts=8,
                autoExpand=True,  # grows as VMs join
                defaultPortConfig=setting,
            )
            return self.started(  # type: ignore[return-value]
                {"op": "network"},
                f"creating port group {name}",
                lambda: dvs.AddDVPortgroup_Task([spec]),
                lambda: self.network_outcome(entity, "inactive"),
            )
        policy = vim.host.NetworkPolicy()
        group = vim.host.PortGroup.Specification(
            name=name, vlanId=vlan, vswitchName=self.config.vswitch, policy=policy
        )
        for host in self.session.call("listing the hosts", self.session.hosts):
            try:
                self.session.call(
                    f"adding port group {name} on {host.name}",
                    _on(host, lambda h: h.configManager.networkSystem.AddPortGroup(portgrp=group)),
                )
            except PlatformError as exc:
                if "AlreadyExists" not in str(exc):
                    raise
        return self.network_outcome(entity, "inactive")

    def _network_state(self, entity: Resource, wanted: str) -> Outcome:
        name = common.platform_name(entity)
        current = self.network_outcome(entity).attributes["occi.network.state"]
        if current == wanted:
            raise InvalidTransition(f"network {entity.id} is {wanted} already")
        group = self.portgroup(name)
        if isinstance(group, vim.dvs.DistributedVirtualPortgroup):
            p = self.session.call(
                "reading a port group", lambda: self.session.props(group, GROUP_PATHS)
            )
            setting = p.get("config.defaultPortConfig") or DVS.VmwarePortConfigPolicy()
            setting.blocked = vim.BoolPolicy(inherited=False, value=wanted != "active")
            spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
                configVersion=p.get("config.configVersion"),
                name=p.get("config.name") or name,
                numPorts=p.get("config.numPorts"),
                autoExpand=p.get("config.autoExpand"),
                type=p.get("config.type"),
                defaultPortConfig=setting,
            )
            doing = f"{'unblocking' if wanted == 'active' else 'blocking'} port group {name}"
            self.session.run(doing, lambda: group.ReconfigureDVPortgroup_Task(spec))
        return self.network_outcome(entity, wanted)

    def network_up(self, entity: Resource) -> Outcome:
        return self._network_state(entity, "active")

    def network_down(self, entity: Resource) -> Outcome:
        return self._network_state(entity, "inactive")

    def network_delete(self, entity: Resource) -> Pending | None:
        name = common.platform_name(entity)
        group = self.portgroup(name)
        if group is None:
            return None
        if isinstance(group, vim.dvs.DistributedVirtualPortgroup):
            self.session.run(f"deleting port group {name}", lambda: group.Destroy_Task())
            return None
        for host in self.session.call("listing the hosts", self.session.hosts):
            try:
                self.session.call(
                    f"removing port group {name} from {host.name}",
                    _on(host, lambda h: h.configManager.networkSystem.RemovePortGroup(pgName=name)),
                )
            except (NotFoundOnPlatform, Unsupported):
                continue
        return None

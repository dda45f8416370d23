"""The XenServer / XCP-ng backend: a Xen pool driven through XenAPI, the typed contract
implemented directly. compute.py holds the computes, devices.py storage, networks and links,
pool.py the lookups, hosts and Async tasks they share, events.py the event.from watcher,
states.py the mapping tables, catalog.py the templates.

Registered as the `xenserver` entry point of `occi.backends` (extra `[xenserver]`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from backends import common
from backends.base import (
    CAPABILITIES,
    Backend,
    EventCallback,
    NotFoundOnPlatform,
    Outcome,
)
from backends.xenserver import catalog
from backends.xenserver.catalog import SAVED_KEY
from backends.xenserver.client import XenClient, translated
from backends.xenserver.compute import ComputeOps
from backends.xenserver.config import XenConfig
from backends.xenserver.devices import DeviceOps
from backends.xenserver.events import EventWatcher
from backends.xenserver.pool import Finisher
from occi import infrastructure as infra
from occi.model import Entity, Link, Mixin

log = logging.getLogger(__name__)


class XenServerBackend(ComputeOps, DeviceOps, Backend):
    name = "xenserver"
    live_attributes = frozenset({"occi.compute.cores", "occi.compute.memory"})
    capabilities = CAPABILITIES

    def __init__(self, settings: Mapping[str, Any] | None = None):
        super().__init__(settings)
        self.config = XenConfig.from_settings(self.settings)
        self.client = XenClient(self.config)
        self._watcher: EventWatcher | None = None
        self._hosts: dict[str, str] = {}  # host uuid -> ref
        self._finishers: dict[str, Finisher] = {
            "create": self._finish_create,
            "power": self._finish_power,
            "migrate": self._finish_migrate,
            "save": self._finish_save,
            "vdi_resize": self._finish_vdi_resize,
        }

    # ================================================================== catalog
    def provider_mixins(self) -> list[Mixin]:
        with translated("listing the pool's templates"):
            records = self._template_records()
        scheme = self.config.os_tpl_scheme
        mixins = [
            catalog.os_tpl(scheme, term, str(records[ref].get("name_label")))
            for term, ref in catalog.templates(records, self.config.templates).items()
        ]
        mixins += [
            catalog.resource_tpl(self.config.resource_tpl_scheme, spec)
            for spec in self.config.resource_templates
        ]
        return [*mixins, *infra.CRTP_TEMPLATES]

    def delete_image(self, mixin: Mixin) -> None:
        with translated(f"deleting template {mixin.term}"):
            records = self._template_records()
            for ref, rec in records.items():
                if catalog.template_term(rec) == mixin.term and SAVED_KEY in rec["other_config"]:
                    self._destroy_vm_and_disks(ref, rec, own_only=False)

    def ping(self) -> bool:
        try:
            self.client.api.pool.get_all()
            return True
        except Exception:  # noqa: BLE001 - health check
            return False

    def close(self) -> None:
        self.stop_events()
        self.client.close()

    # ================================================================== observe
    def observe(self, entity: Entity) -> Outcome:
        if isinstance(entity, Link) or entity.is_link:
            return self._observe_link(entity)  # type: ignore[arg-type]
        kind = entity.kind.rsplit("#", 1)[-1]
        with translated(f"reading {kind} {common.platform_name(entity)}"):
            if kind == "storage":
                return self._observe_storage(entity)  # type: ignore[arg-type]
            if kind == "network":
                return self._observe_network(entity)  # type: ignore[arg-type]
            if kind != "compute":
                raise NotFoundOnPlatform(f"the pool holds nothing of kind {entity.kind}")
            _, rec = self._require_vm(entity)
            return self._observe_vm(entity, rec)

    # ================================================================== events
    def start_events(self, callback: EventCallback) -> bool:
        if self._watcher is not None:
            return True
        self._watcher = EventWatcher(self.client, callback, self.config.event_timeout)
        self._watcher.start()
        return True

    def stop_events(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

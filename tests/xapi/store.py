"""The test xapi server's object database: records per class under `OpaqueRef:` handles, with
uuids, the generic field messages (get_record, get_by_uuid, get_<field>, set_<field>,
add_to_/remove_from_ of maps) and an event for every change (tests/xapi/events.py)."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from typing import Any

from tests.xapi import errors
from tests.xapi.errors import XapiError

NULL = "OpaqueRef:NULL"

#: the classes the server holds and, per class, the fields a client may set through the
#: generic `set_<field>` (the others change through their own messages only)
WRITABLE: dict[str, frozenset[str]] = {
    "pool": frozenset({"name_label", "name_description", "default_SR", "other_config"}),
    "host": frozenset({"name_label", "name_description", "other_config", "tags"}),
    "host_metrics": frozenset({"other_config"}),
    "SR": frozenset({"name_label", "name_description", "other_config", "tags"}),
    "VM": frozenset(
        {
            "name_label",
            "name_description",
            "other_config",
            "xenstore_data",
            "tags",
            "affinity",
            "is_a_template",
            "platform",
            "PV_args",
        }
    ),
    "VM_metrics": frozenset({"other_config"}),
    "VM_guest_metrics": frozenset({"other_config"}),
    "VDI": frozenset({"name_label", "name_description", "other_config", "tags", "sm_config"}),
    "VBD": frozenset({"other_config", "userdevice", "bootable", "mode"}),
    "VIF": frozenset({"other_config"}),
    "network": frozenset({"name_label", "name_description", "other_config", "tags", "MTU"}),
    "task": frozenset({"other_config"}),
}
#: 64-bit integer fields: kept as ints here, sent as strings on the wire like every int
INT_FIELDS = frozenset(
    {
        "VCPUs_max",
        "VCPUs_at_startup",
        "memory_static_max",
        "memory_static_min",
        "memory_dynamic_max",
        "memory_dynamic_min",
        "memory_total",
        "memory_free",
        "virtual_size",
        "physical_size",
        "physical_utilisation",
        "MTU",
        "domid",
        "API_version_major",
        "API_version_minor",
    }
)


def new_ref() -> str:
    return f"OpaqueRef:{uuid.uuid4()}"


def class_key(name: str) -> str | None:
    """The class as the database spells it, from any case ('vm' -> 'VM'); None if unknown."""
    for known in WRITABLE:
        if known.lower() == name.lower():
            return known
    return None


class Store:
    """Every object of the pool. One lock guards all (the server is small); `on_change` is told
    each (class, operation, ref, snapshot) as it happens, inside the lock."""

    def __init__(self, on_change: Callable[[str, str, str, dict[str, Any] | None], None]):
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {cls: {} for cls in WRITABLE}
        self.on_change = on_change

    # ------------------------------------------------------------------ records
    def add(self, cls: str, record: dict[str, Any], ref: str | None = None) -> str:
        with self.lock:
            ref = ref or new_ref()
            record.setdefault("uuid", str(uuid.uuid4()))
            record.setdefault("other_config", {})
            self.objects[cls][ref] = record
            self.on_change(cls, "add", ref, self.public(record))
            return ref

    def get(self, cls: str, ref: Any) -> dict[str, Any]:
        """The live record (callers change it and call `touched`); HANDLE_INVALID if none."""
        found = self.objects[cls].get(ref) if isinstance(ref, str) else None
        if found is None:
            raise XapiError(errors.HANDLE_INVALID, cls, ref)
        return found

    def exists(self, cls: str, ref: Any) -> bool:
        return isinstance(ref, str) and ref in self.objects[cls]

    def touched(self, cls: str, ref: str) -> None:
        self.on_change(cls, "mod", ref, self.public(self.objects[cls][ref]))

    def update(self, cls: str, ref: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            record = self.get(cls, ref)
            record.update(fields)
            self.touched(cls, ref)
            return record

    def remove(self, cls: str, ref: str) -> dict[str, Any]:
        with self.lock:
            record = self.get(cls, ref)
            del self.objects[cls][ref]
            self.on_change(cls, "del", ref, None)
            return record

    def find(self, cls: str, **match: Any) -> list[str]:
        return [
            ref
            for ref, rec in self.objects[cls].items()
            if all(rec.get(k) == v for k, v in match.items())
        ]

    @staticmethod
    def public(record: dict[str, Any]) -> dict[str, Any]:
        """The record as clients see it: private fields (a leading underscore) left out."""
        return {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}

    # ------------------------------------------------------------------ generic messages
    def generic(self, cls: str, message: str) -> Callable[..., Any] | None:
        """The handler of a generic message of `cls` (get_record, set_name_label, ...)."""
        if message == "get_all":
            return lambda: list(self.objects[cls])
        if message == "get_all_records":
            return lambda: {r: self.public(rec) for r, rec in self.objects[cls].items()}
        if message == "get_record":
            return lambda ref: self.public(self.get(cls, ref))
        if message == "get_by_uuid":
            return lambda value: self._by_uuid(cls, value)
        if message == "get_by_name_label":
            return lambda value: self.find(cls, name_label=value)
        for prefix, make in (
            ("get_", self._getter),
            ("set_", self._setter),
            ("add_to_", self._adder),
            ("remove_from_", self._remover),
        ):
            if message.startswith(prefix):
                return make(cls, message[len(prefix) :])
        return None

    def _by_uuid(self, cls: str, value: str) -> str:
        for ref, rec in self.objects[cls].items():
            if rec.get("uuid") == value:
                return ref
        raise XapiError(errors.UUID_INVALID, cls, value)  # the table name, as xapi's database says

    def _getter(self, cls: str, name: str) -> Callable[..., Any] | None:
        def get(ref: str) -> Any:
            record = self.get(cls, ref)
            if name not in record or name.startswith("_"):
                raise XapiError(errors.MESSAGE_METHOD_UNKNOWN, f"{cls}.get_{name}")
            return copy.deepcopy(record[name])

        return get

    def _setter(self, cls: str, name: str) -> Callable[..., Any] | None:
        if name not in WRITABLE[cls]:
            return None

        def set_(ref: str, value: Any) -> None:
            with self.lock:
                record = self.get(cls, ref)
                record[name] = _typed(name, value)
                self.touched(cls, ref)

        return set_

    def _adder(self, cls: str, name: str) -> Callable[..., Any] | None:
        if name not in WRITABLE[cls]:
            return None

        def add(ref: str, key: str, value: str) -> None:
            with self.lock:
                record = self.get(cls, ref)
                field = record.setdefault(name, {})
                if not isinstance(field, dict):
                    raise XapiError(errors.FIELD_TYPE_ERROR, name)
                if key in field:
                    raise XapiError(errors.MAP_DUPLICATE_KEY, cls, name, ref, key)
                field[str(key)] = str(value)
                self.touched(cls, ref)

        return add

    def _remover(self, cls: str, name: str) -> Callable[..., Any] | None:
        if name not in WRITABLE[cls]:
            return None

        def remove(ref: str, key: str) -> None:
            with self.lock:
                record = self.get(cls, ref)
                field = record.get(name)
                if not isinstance(field, dict):
                    raise XapiError(errors.FIELD_TYPE_ERROR, name)
                field.pop(key, None)  # xapi: removing an absent key is no error
                self.touched(cls, ref)

        return remove


def _typed(name: str, value: Any) -> Any:
    """A value from the wire for field `name` (64-bit integers arrive as strings)."""
    if name in INT_FIELDS:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise XapiError(errors.FIELD_TYPE_ERROR, name) from None
    return value


def as_int(name: str, value: Any) -> int:
    """An int parameter from the wire (a string, as the SDK sends 64-bit integers)."""
    if isinstance(value, bool):
        raise XapiError(errors.FIELD_TYPE_ERROR, name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise XapiError(errors.FIELD_TYPE_ERROR, name) from None

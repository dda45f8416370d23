"""Backend loading through the `occi.backends` entry point group.

Touches importlib only; the backend classes themselves live under backends/.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from backends.base import Backend

# When the package is used from a source tree without being installed, entry points are absent:
# the backends shipped here are still found by name.
BUILTIN = {
    "simulator": "backends.simulator:SimulatorBackend",
    "libvirt": "backends.libvirt:LibvirtBackend",
}


class BackendNotFound(LookupError):
    pass


def available() -> list[str]:
    names = {ep.name for ep in entry_points(group="occi.backends")}
    return sorted(names | set(BUILTIN))


def load_backend(name: str, settings: dict[str, Any]) -> Backend:
    target = None
    for ep in entry_points(group="occi.backends"):
        if ep.name == name:
            target = ep.load()
            break
    if target is None and name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        target = getattr(importlib.import_module(module), attr)
    if target is None:
        raise BackendNotFound(f"no backend named {name!r}; available: {', '.join(available())}")
    backend = target(settings)
    if not isinstance(backend, Backend):
        raise BackendNotFound(f"{name!r} does not implement backends.base.Backend")
    return backend

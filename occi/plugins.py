"""Backend loading through the `occi.backends` entry point group.

Touches importlib only; the backend classes themselves live under backends/. `probe()` says
whether a backend can be loaded here, and what to install when it cannot, so that the command
line refuses an unusable backend before the server binds.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from backends.base import Backend

# When the package is used from a source tree without being installed, entry points are absent:
# the backends shipped here are still found by name.
BUILTIN = {
    "simulator": "backends.simulator:SimulatorBackend",
    "libvirt": "backends.libvirt:LibvirtBackend [libvirt]",
}
#: the distribution whose extras the built-in backends name
DISTRIBUTION = "occi-server"


class BackendNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Probe:
    """Whether one backend can be loaded here; `reason` says why not and what to install."""

    name: str
    usable: bool
    reason: str = ""


def _entry_points() -> dict[str, EntryPoint]:
    found = {
        name: EntryPoint(name=name, value=value, group="occi.backends")
        for name, value in BUILTIN.items()
    }
    for ep in entry_points(group="occi.backends"):
        found[ep.name] = ep
    return found


def available() -> list[str]:
    """The names of the installed backends, usable or not (see `probe`)."""
    return sorted(_entry_points())


def _install_hint(ep: EntryPoint) -> str:
    dist = ep.dist.name if ep.dist is not None else DISTRIBUTION
    if ep.extras:
        return f"pip install '{dist}[{','.join(ep.extras)}]'"
    return f"reinstall {dist}"


def _load_class(name: str) -> type:
    """The backend class registered as `name`; BackendNotFound says why it cannot be loaded."""
    ep = _entry_points().get(name)
    if ep is None:
        raise BackendNotFound(f"no backend named {name!r}; installed: {', '.join(available())}")
    try:
        target = ep.load()
    except ImportError as exc:
        raise BackendNotFound(
            f"backend {name!r} cannot be loaded ({exc}): {_install_hint(ep)}"
        ) from exc
    if not (isinstance(target, type) and issubclass(target, Backend)):
        raise BackendNotFound(f"{name!r} does not implement backends.base.Backend")
    return target


def probe(name: str) -> Probe:
    """Load `name`'s class (without connecting to its platform) and say whether that worked."""
    try:
        _load_class(name)
    except BackendNotFound as exc:
        return Probe(name, False, str(exc))
    return Probe(name, True)


def load_backend(name: str, settings: dict[str, Any]) -> Backend:
    return _load_class(name)(settings)

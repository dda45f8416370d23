"""Backend loading through the `occi.backends` entry point group, and the backends' contract
targets through `occi.backend_contracts`.

Touches importlib only; the backend classes themselves live under backends/. `probe()` says
whether a backend can be loaded here, and what to install when it cannot, so that the command
line refuses an unusable backend before the server binds.

A backend joins the contract suite (tests/backends/test_contract.py) by registering a
backends.contract.ContractTarget under its name in `occi.backend_contracts`. That group has no
fallback for an uninstalled source tree: the suite runs on what is installed (`make
install-test` registers the built-in targets), as a backend from another distribution would.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from backends.base import Backend
from backends.contract import ContractTarget

# When the package is used from a source tree without being installed, entry points are absent:
# the backends shipped here are still found by name.
BUILTIN = {
    "simulator": "backends.simulator:SimulatorBackend",
    "libvirt": "backends.libvirt:LibvirtBackend [libvirt]",
}
#: the distribution whose extras the built-in backends name
DISTRIBUTION = "occi-server"
CONTRACT_GROUP = "occi.backend_contracts"


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


def backend_class(name: str) -> type[Backend]:
    """The class registered as `name` (BackendNotFound says why not), to ask it what it does
    without making an instance."""
    return _load_class(name)


def load_backend(name: str, settings: dict[str, Any]) -> Backend:
    return _load_class(name)(settings)


# ---------------------------------------------------------------------------- contract targets
def _contract_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=CONTRACT_GROUP)}


def contract_names() -> list[str]:
    """The names of the backends that declared a contract target (without loading them)."""
    return sorted(_contract_entry_points())


def load_contract(name: str) -> ContractTarget:
    """The contract target declared for backend `name`; BackendNotFound says why there is
    none, or why it cannot be loaded (and what to install)."""
    ep = _contract_entry_points().get(name)
    if ep is None:
        raise BackendNotFound(
            f"backend {name!r} declares no contract target ({CONTRACT_GROUP} entry point); "
            f"declared: {', '.join(contract_names()) or 'none (is the package installed?)'}"
        )
    try:
        target = ep.load()
    except ImportError as exc:
        raise BackendNotFound(
            f"the contract target of {name!r} cannot be loaded ({exc}): {_install_hint(ep)}"
        ) from exc
    if not isinstance(target, ContractTarget):
        raise BackendNotFound(f"{ep.value} is not a backends.contract.ContractTarget")
    if target.name != name:
        raise BackendNotFound(
            f"{ep.value} declares backend {target.name!r}, registered as {name!r}"
        )
    return target


def contract_targets() -> dict[str, ContractTarget]:
    """Every declared contract target, loaded (BackendNotFound for one that cannot be)."""
    return {name: load_contract(name) for name in contract_names()}

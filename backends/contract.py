"""How a backend joins the contract suite (tests/backends/test_contract.py): it declares a
`ContractTarget` and registers it in the `occi.backend_contracts` entry point group under its
backend's name, e.g. in its setup.py:

    entry_points={
        "occi.backends": ["vsphere=occi_vsphere:VSphereBackend"],
        "occi.backend_contracts": ["vsphere=occi_vsphere.contract:TARGET"],
    }

The suite runs against every declared target (occi.plugins.contract_targets), so a backend
installed from another distribution is checked like the built-in ones, without a list kept by
hand. A target makes a backend configured for a cluster of several hosts of different sizes
(the first two differ: placement tests use them, a migration goes from the first to the
second) and says what the backend must report for each host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backends.base import Backend
from occi.model import Placement


@dataclass(frozen=True)
class ContractHost:
    """One host of the cluster: its platform address (what `host_capacity` and `migrate`
    take, and what a placement carries as host_uri) and the size the backend must report."""

    name: str
    uri: str
    cores: int
    memory_mb: int

    def placement(self) -> Placement:
        """A placement on this host, as the server hands it to the backend (a fresh one per
        entity: placements are mutable)."""
        return Placement(host_name=self.name, host_uri=self.uri)


@dataclass
class ContractCluster:
    """What a target made for one test: the backend and the hosts it drives. `cleanup` (an
    optional hook) runs after the test, once the backend is closed: a real platform removes
    what the test left there."""

    backend: Backend
    hosts: tuple[ContractHost, ...]
    cleanup: Callable[[], None] | None = field(default=None)


@dataclass(frozen=True)
class ContractTarget:
    """A backend's declaration for the contract suite.

    `name` is the backend's name in the `occi.backends` group. `make(tmp)` returns a fresh
    cluster for one test; `tmp` is an empty directory of that test for files the backend needs
    (a database, host descriptions). Entities without a placement live where the backend's own
    settings point, which `make` chooses (it may be one of the hosts)."""

    name: str
    make: Callable[[Path], ContractCluster]
    description: str = ""

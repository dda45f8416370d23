"""vSphere's declaration for the contract suite (see backends/contract.py).

The cluster is a vCenter's: VMware's simulator (vcsim) in the tests, where the first host of
cluster DC0_C0 is made larger (8 cores, 16 GiB) than the others (2 cores, 4 GiB; see
tests/vcsim/main.go). The endpoint comes from OCCI_VSPHERE_CONTRACT_URL
(`https://user:password@host:port/sdk`, with OCCI_VSPHERE_CONTRACT_CLUSTER and _DATASTORE), so an
installed package runs the suite against any vCenter; without it, the test tree's shared
simulator is started (tests.vcsim). Entities without a placement live in the cluster's root
resource pool, on the host vCenter picks.

Imported only through the entry point, whose `[vsphere]` extra names what it needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from backends.contract import ContractCluster, ContractHost, ContractTarget
from backends.vsphere.backend import VsphereBackend

#: the simulator's hosts, in the order the suite uses them, with the size they must report
SIMULATED = {"DC0_C0_H0": (8, 16 * 1024), "DC0_C0_H1": (2, 4095), "DC0_C0_H2": (2, 4095)}


def settings() -> dict[str, Any]:
    url = os.environ.get("OCCI_VSPHERE_CONTRACT_URL")
    if not url:
        from tests.vcsim import shared  # the source tree's simulator

        return shared("vpx").settings(vsphere_event_wait=1)
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    return {
        "vsphere_url": parts._replace(netloc=f"{netloc}:{parts.port or 443}").geturl(),
        "vsphere_user": parts.username or "",
        "vsphere_password": parts.password or "",
        "vsphere_insecure": os.environ.get("OCCI_VSPHERE_CONTRACT_INSECURE", "1"),
        "vsphere_cluster": os.environ.get("OCCI_VSPHERE_CONTRACT_CLUSTER", ""),
        "vsphere_datastore": os.environ.get("OCCI_VSPHERE_CONTRACT_DATASTORE", ""),
    }


def make(tmp: Path) -> ContractCluster:
    backend = VsphereBackend(settings())
    found = backend.discover_hosts() or []
    if all(h.name in SIMULATED for h in found):
        order = {name: i for i, name in enumerate(SIMULATED)}
        hosts = tuple(
            ContractHost(h.name, h.uri, *SIMULATED[h.name])
            for h in sorted(found, key=lambda h: order[h.name])
        )
    else:  # a real vCenter: the sizes it reports, the largest host first
        hosts = tuple(
            ContractHost(h.name, h.uri, h.capacity.cores, h.capacity.memory_mb)
            for h in sorted(found, key=lambda h: (-h.capacity.memory_mb, h.name))
        )
    return ContractCluster(backend, hosts)


TARGET = ContractTarget(
    name="vsphere", make=make, description="a vCenter cluster (VMware's simulator in the tests)"
)

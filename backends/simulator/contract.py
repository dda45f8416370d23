"""The simulator's declaration for the contract suite (see backends/contract.py): a platform
database in the test's directory and three declared hosts of two sizes."""

from __future__ import annotations

from pathlib import Path

from backends.contract import ContractCluster, ContractHost, ContractTarget

#: the simulated cluster: a large host and two small ones (a host's address is its name)
HOSTS = (
    ContractHost("sim-large", "sim-large", cores=16, memory_mb=64 * 1024),
    ContractHost("sim-small", "sim-small", cores=4, memory_mb=8 * 1024),
    ContractHost("sim-small-2", "sim-small-2", cores=4, memory_mb=8 * 1024),
)


def simulator_hosts(hosts: tuple[ContractHost, ...] = HOSTS) -> str:
    """The simulator_hosts setting declaring `hosts` (name:cores:memory_gb,...)."""
    return ",".join(f"{h.name}:{h.cores}:{h.memory_mb // 1024}" for h in hosts)


def make(tmp: Path) -> ContractCluster:
    from backends.simulator import SimulatorBackend

    backend = SimulatorBackend(
        {"database_url": f"sqlite:///{tmp / 'occi.db'}", "simulator_hosts": simulator_hosts()}
    )
    return ContractCluster(backend, HOSTS)


TARGET = ContractTarget(
    name="simulator", make=make, description="the simulator, hosts from simulator_hosts"
)

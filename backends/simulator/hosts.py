"""The simulator's declared hosts: the `simulator_hosts` option, `name:cores:memory_gb,...`.

A simulated cloud needs hosts of known sizes for placement to fill; nothing else about them is
simulated (they all reach the one simulated platform). The default is three hosts generous
enough that the test suite and `make bench` (thousands of small computes) never run out: 256
cores and 1024 GB each, which the one-cluster shorthand overcommits further (its settings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_HOSTS = "sim1:256:1024,sim2:256:1024,sim3:256:1024"
#: bounds of one declared host
MAX_CORES = 100_000
MAX_MEMORY_GB = 1 << 20
_ITEM = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]{0,62}):(\d{1,7}):(\d{1,8})")


@dataclass(frozen=True)
class SimulatedHost:
    name: str
    cores: int
    memory_mb: int


class HostsOptionError(ValueError):
    """simulator_hosts cannot be read."""


def parse_hosts(text: str | None) -> list[SimulatedHost]:
    """`sim1:16:64,sim2:8:32` -> two hosts; empty or None: DEFAULT_HOSTS."""
    text = (text or "").strip() or DEFAULT_HOSTS
    out: list[SimulatedHost] = []
    for item in (part.strip() for part in text.split(",")):
        match = _ITEM.fullmatch(item)
        if match is None:
            raise HostsOptionError(
                f"simulator_hosts: {item[:80]!r} is not name:cores:memory_gb (e.g. sim1:16:64)"
            )
        name, cores, memory_gb = match.group(1), int(match.group(2)), int(match.group(3))
        if not (1 <= cores <= MAX_CORES and 1 <= memory_gb <= MAX_MEMORY_GB):
            raise HostsOptionError(
                f"simulator_hosts: {name} needs 1 to {MAX_CORES} cores and 1 to {MAX_MEMORY_GB} GB"
            )
        if any(h.name == name for h in out):
            raise HostsOptionError(f"simulator_hosts: {name} is declared twice")
        out.append(SimulatedHost(name, cores, memory_gb * 1024))
    return out

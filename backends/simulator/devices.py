"""How the simulator names the devices it plugs into a compute: MACs, NIC and disk names.

Pure functions; the backend picks the next free name from what the compute already has.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from itertools import count


def mac_for(link_id: str) -> str:
    """A locally administered unicast MAC derived from the link id (same id, same MAC)."""
    digest = hashlib.sha256(link_id.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def nic_names() -> Iterator[str]:
    for i in count():
        yield f"eth{i}"


def disk_names() -> Iterator[str]:
    """vdb, vdc, ..., vdz, vdaa, vdab, ... (vda is the root disk)."""
    for i in count(1):
        letters = ""
        n = i
        while True:
            letters = chr(ord("a") + n % 26) + letters
            n = n // 26 - 1
            if n < 0:
                break
        yield "vd" + letters


def next_free(names: Iterator[str], used: Iterable[str]) -> str:
    taken = set(used)
    for name in names:
        if name not in taken:
            return name
    raise AssertionError("unreachable: name generators are infinite")

"""XenServer's declaration for the contract suite (see backends/contract.py): a pool of two
hosts of different sizes served by the project's test xapi server (tests/xapi, started once per
process in a thread), or by the xapi at OCCI_XENSERVER_CONTRACT_URL (user and password in
OCCI_XENSERVER_CONTRACT_USER / _PASSWORD) for a run against a real pool. The hosts are the
pool's, as discover_hosts lists them; operations wait for their tasks (no Pending here: the
suite checks Outcomes; tests/backends/test_xenserver.py drives the Pending path).

Imported only through the entry point, whose `[xenserver]` extra names what it needs.
"""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path
from typing import Any

from backends.contract import ContractCluster, ContractHost, ContractTarget
from backends.xenserver.backend import XenServerBackend

USER, PASSWORD = "root", "xapi-test"
_lock = threading.Lock()
_server: Any = None


def test_pool_url() -> str:
    """The URL of this process's test xapi server (started on first use)."""
    global _server
    with _lock:
        if _server is None:
            xapi = importlib.import_module("tests.xapi")  # the test tree: a source checkout
            _server, _ = xapi.start(user=USER, password=PASSWORD)
        return str(_server.url)


def settings(url: str | None = None, **extra: Any) -> dict[str, Any]:
    """Backend settings for the test pool (or the real one of the environment)."""
    real = os.environ.get("OCCI_XENSERVER_CONTRACT_URL")
    return {
        "xenserver_url": url or real or test_pool_url(),
        "xenserver_user": os.environ.get("OCCI_XENSERVER_CONTRACT_USER", USER) if real else USER,
        "xenserver_password": (
            os.environ.get("OCCI_XENSERVER_CONTRACT_PASSWORD", PASSWORD) if real else PASSWORD
        ),
        "xenserver_task_wait": "60",
        **extra,
    }


def make(tmp: Path) -> ContractCluster:
    backend = XenServerBackend(settings())
    listed = backend.discover_hosts() or []
    hosts = tuple(
        ContractHost(h.name, h.uri, h.capacity.cores, h.capacity.memory_mb) for h in listed
    )
    return ContractCluster(backend, hosts)


TARGET = ContractTarget(
    name="xenserver", make=make, description="the test xapi server: a pool of two hosts"
)

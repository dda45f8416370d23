"""The XenServer backend end to end: a real `occi-server` (gunicorn) configured by the one-cluster
shorthand alone (OCCI_BACKEND=xenserver, OCCI_XENSERVER_URL, _USER, _PASSWORD, _SR) against the
test xapi server run as a user would (`python -m tests.xapi`, its tasks pending for a moment so
that every operation is Pending and polled). The lifecycle over HTTP, the pool's two hosts in
the inventory with a maintenance that migrates the VMs and disables the host, and a power change
made through the SDK (as XenCenter or xe would) arriving through event.from."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests
import XenAPI

from tests.live import ROOT, LiveServer

pytestmark = pytest.mark.server

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
ACT = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
OS_TPL = "http://occi.xenserver.local/os_tpl#"
JSON = {"Content-Type": "application/occi+json", "Accept": "application/occi+json"}
USER, PASSWORD = "root", "pool-secret"
#: how many times a test reads an entity while waiting for a change (0.2 s apart)
READS = 100


@pytest.fixture(scope="module")
def pool() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.xapi", "--port", "0", "--password", PASSWORD,
         "--task-delay", "0.1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(10)


MEMBER, ADMIN = ("alice", "alice-password"), ("root", "root-password")


def users(url: str) -> None:
    """A member of the default project (alice) and an administrator (root)."""
    from occi.identity.passwords import hash_password
    from occi.identity.store import IdentityTx
    from occi.store import make_store

    store = make_store(url)
    try:
        store.upgrade()
        with store.begin() as tx:
            ids = IdentityTx(tx)
            for (name, password), project, role in ((MEMBER, "default", "member"),
                                                    (ADMIN, None, "admin")):  # fmt: skip
                ids.create_user(name, password_hash=hash_password(password))
                ids.grant(name, project, role)
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(pool, tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("xen")
    url = f"sqlite:///{tmp}/occi.db"
    users(url)
    live = LiveServer(
        tmp,
        database_url=url,
        auth="basic",
        secret_key="a key for the xenserver tests",
        workers=2,
        env={
            "OCCI_BACKEND": "xenserver",
            "OCCI_XENSERVER_URL": pool,
            "OCCI_XENSERVER_USER": USER,
            "OCCI_XENSERVER_PASSWORD": PASSWORD,
            "OCCI_XENSERVER_SR": "NFS shared storage",
            "OCCI_XENSERVER_TASK_WAIT": "0",  # every Async task is a Pending, polled
            "OCCI_XENSERVER_POLL_AFTER": "0.1",
            "OCCI_XENSERVER_EVENT_TIMEOUT": "2",
        },
    )
    try:
        yield live
    finally:
        output = live.output()
        live.stop()
        assert PASSWORD not in output  # the password is never logged


@pytest.fixture
def x(pool):
    session = XenAPI.Session(pool)
    session.xenapi.login_with_password(USER, PASSWORD, "2.21", "tests")
    yield session.xenapi
    session.xenapi.session.logout()


def post(server: LiveServer, path: str, body: dict, expect: int = 201) -> requests.Response:
    r = requests.post(server.url + path, json=body, headers=JSON, auth=MEMBER, timeout=60)
    assert r.status_code == expect, f"{path}: {r.status_code} {r.text}\n{server.output()[-3000:]}"
    return r


def get(server: LiveServer, location: str) -> dict:
    r = requests.get(server.url + location, headers=JSON, auth=MEMBER, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def path_of(server: LiveServer, r: requests.Response) -> str:
    return r.headers["Location"].removeprefix(server.url)


def act(server: LiveServer, location: str, action: str, expect: int = 200, **params) -> dict:
    body: dict = {"action": ACT + action}
    if params:
        body["attributes"] = params
    r = requests.post(
        f"{server.url}{location}?action={action}",
        json=body,
        headers=JSON,
        auth=MEMBER,
        timeout=60,
    )
    assert r.status_code == expect, f"{action}: {r.status_code} {r.text}"
    return r.json()


def state_of(server: LiveServer, location: str) -> str:
    return str(get(server, location)["attributes"]["occi.compute.state"])


def reaches(
    server: LiveServer, location: str, state: str, attribute: str = "occi.compute.state"
) -> dict:
    """The entity's attributes once `attribute` is `state` (read at most READS times)."""
    for _ in range(READS):
        attributes = get(server, location)["attributes"]
        if attributes[attribute] == state:
            return attributes
        time.sleep(0.2)
    raise AssertionError(f"{location} never became {state}: {attributes}")


def admin(server: LiveServer, method: str, path: str) -> dict:
    r = requests.request(
        method,
        f"{server.url}/-/admin{path}",
        headers={"Accept": "application/json"},
        auth=ADMIN,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()


def compute(server: LiveServer, template: str = "Debian-Bookworm-12", cores: int = 1) -> str:
    doc = {
        "kind": INFRA + "compute",
        "mixins": [OS_TPL + template],
        "attributes": {"occi.compute.cores": cores, "occi.compute.memory": 1.0},
    }
    return path_of(server, post(server, "/compute/", doc))


def vm_of(x, location: str) -> str:
    (ref,) = x.VM.get_by_name_label("occi-" + location.rsplit("/", 1)[-1])
    return ref


# ---------------------------------------------------------------------------- lifecycle
def test_the_lifecycle_over_http(server, x):
    vm = compute(server)
    assert state_of(server, vm) == "inactive"
    ref = vm_of(x, vm)
    assert x.VM.get_other_config(ref)["occi_entity_id"] == vm.rsplit("/", 1)[-1]

    stor = path_of(server, post(server, "/storage/", {"kind": INFRA + "storage",
                                                     "attributes": {"occi.storage.size": 2}}))  # fmt: skip
    net = path_of(server, post(server, "/network/", {"kind": INFRA + "network"}))
    for location, action in ((stor, "storage/action#online"), (net, "network/action#up")):
        r = requests.post(
            f"{server.url}{location}?action={action.rsplit('#', 1)[1]}",
            json={"action": INFRA[:-1] + "/" + action},
            headers=JSON,
            auth=MEMBER,
            timeout=60,
        )
        assert r.status_code == 200, r.text
    disk = path_of(server, post(server, "/link/storagelink/", {
        "kind": INFRA + "storagelink",
        "source": {"location": vm},
        "target": {"location": stor, "kind": INFRA + "storage"},
    }))  # fmt: skip
    assert get(server, disk)["attributes"]["occi.storagelink.deviceid"] == "vdb"
    nic = path_of(server, post(server, "/link/networkinterface/", {
        "kind": INFRA + "networkinterface",
        "source": {"location": vm},
        "target": {"location": net, "kind": INFRA + "network"},
    }))  # fmt: skip
    mac = get(server, nic)["attributes"]["occi.networkinterface.mac"]
    (vif,) = x.VM.get_VIFs(ref)
    assert x.VIF.get_MAC(vif) == mac

    act(server, vm, "start")
    assert state_of(server, vm) == "active"
    assert x.VM.get_power_state(ref) == "Running"
    # the VBD plugged with the start: its event brings the link's state along
    reaches(server, disk, "active", "occi.storagelink.state")
    # a resize beyond what the VM started with needs a halt: a clear 409, nothing changed
    r = requests.put(
        server.url + vm,
        json={"kind": INFRA + "compute", "mixins": [OS_TPL + "Debian-Bookworm-12"],
              "attributes": {"occi.compute.cores": 64, "occi.compute.memory": 1.0}},
        headers=JSON,
        auth=MEMBER,
        timeout=60,
    )  # fmt: skip
    assert r.status_code == 409 and "halted first" in r.text, r.text
    assert x.VM.get_VCPUs_at_startup(ref) == "1"
    act(server, vm, "suspend", method="suspend")
    assert x.VM.get_power_state(ref) == "Paused"
    act(server, vm, "start")
    act(server, vm, "restart", method="graceful")
    act(server, vm, "stop")
    attributes = get(server, vm)["attributes"]
    assert attributes["occi.compute.state"] == "inactive"
    assert "graceful" in attributes["occi.compute.state.message"]
    assert x.VM.get_power_state(ref) == "Halted"
    # the stopped VM takes the size from its next start
    r = requests.put(
        server.url + vm,
        json={"kind": INFRA + "compute", "mixins": [OS_TPL + "Debian-Bookworm-12"],
              "attributes": {"occi.compute.cores": 2, "occi.compute.memory": 2.0}},
        headers=JSON,
        auth=MEMBER,
        timeout=60,
    )  # fmt: skip
    assert r.status_code in (200, 201), r.text
    assert x.VM.get_VCPUs_at_startup(ref) == "2"

    for location in (disk, nic, vm, stor, net):
        r = requests.delete(server.url + location, headers=JSON, auth=MEMBER, timeout=60)
        assert r.status_code == 200, r.text
    assert x.VM.get_by_name_label("occi-" + vm.rsplit("/", 1)[-1]) == []
    assert x.VDI.get_by_name_label("occi-" + stor.rsplit("/", 1)[-1]) == []


def test_a_power_change_made_outside_arrives_through_events(server, x):
    vm = compute(server)
    act(server, vm, "start")
    x.VM.hard_shutdown(vm_of(x, vm))  # as XenCenter or `xe vm-shutdown --force` would
    attributes = reaches(server, vm, "inactive")
    assert attributes["occi.compute.state.message"] == "inactive; halted"
    x.VM.start(vm_of(x, vm), False, False)
    reaches(server, vm, "active")
    x.VM.hard_shutdown(vm_of(x, vm))
    reaches(server, vm, "inactive")
    assert requests.delete(server.url + vm, auth=MEMBER, timeout=60).status_code == 200


# ---------------------------------------------------------------------------- hosts
def test_the_pools_hosts_and_a_maintenance_that_migrates_the_vms(server, x):
    cluster = admin(server, "GET", "/clusters/default")
    assert cluster["backend"] == "xenserver"
    assert cluster["settings"]["xenserver_password"] == "********"  # never shown
    hosts = {h["name"]: h for h in admin(server, "GET", "/hosts")["hosts"]}
    assert {n: (h["cores"], h["memory_mb"]) for n, h in hosts.items()} == {
        "xen-host-1": (16, 65536),
        "xen-host-2": (8, 32768),
    }
    placed = [compute(server) for _ in range(3)]
    for location in placed[:2]:
        act(server, location, "start")
    by_host = {name: admin(server, "GET", f"/hosts/{name}")["vms"] for name in hosts}
    busy = max(by_host, key=lambda n: by_host[n])
    other = next(n for n in hosts if n != busy)
    busy_ref = x.host.get_by_name_label(busy)[0]
    doc = admin(server, "POST", f"/hosts/{busy}/maintenance")
    assert doc["admin_state"] == "maintenance" and doc["vms"] == 0, doc
    other_ref = x.host.get_by_name_label(other)[0]
    for location in placed:
        record = x.VM.get_record(vm_of(x, location))
        where = record["resident_on"] if record["power_state"] == "Running" else record["affinity"]
        assert where in (other_ref, "OpaqueRef:NULL"), (location, record["power_state"])
    assert [state_of(server, c) for c in placed] == ["active", "active", "inactive"]
    assert x.host.get_enabled(busy_ref) is False  # the pool places nothing there either
    assert admin(server, "POST", f"/hosts/{busy}/cancel-maintenance")["admin_state"] == "enabled"
    assert x.host.get_enabled(busy_ref) is True
    for location in placed:
        assert requests.delete(server.url + location, auth=MEMBER, timeout=60).status_code == 200

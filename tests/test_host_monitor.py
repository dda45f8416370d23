"""A host that disappears and returns (issue 12): after `host_down_after` seconds without an
answer it is `down`, its VMs show `error` naming it, placement avoids it, the periodic
reconcile leaves them alone; when it answers again it is `up` and its VMs show their real
state again, by themselves.

On libvirt's test driver a host is a file (`test:///<path>.xml`, copied here): moving it away
makes the host stop answering. On the simulator, `occi-simulator hosts off NAME` (the real
console script) switches a simulated host off. The monitor's passes are run with the clock
they are given (`check(now=...)`), so nothing here waits for time to pass, except the last
test, which polls a real server until users see the change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from falcon import testing

from backends.base import Unreachable
from occi.api.wsgi import build
from occi.settings import Settings
from tests import inventory_rows as rows
from tests.api.conftest import INFRA, Api
from tests.live import LiveServer

HOSTS = Path(__file__).parent / "data" / "hosts"
ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
T0 = 1_000_000.0
DOWN_AFTER = 5.0


def _stop(service) -> None:
    if service.runner is not None:
        service.runner.stop()
    service.pool.close()
    service.store.close()
    service.backend.close()


def _compute(api: Api, cores: int) -> str:
    doc = {
        "kind": INFRA + "compute",
        "attributes": {"occi.compute.cores": cores, "occi.compute.memory": 1.0},
    }
    r = api.post("/compute/", doc)
    assert r.status_code == 201, r.text
    return api.path_of(r)


def _state(api: Api, path: str) -> tuple[str, str]:
    r = api.get(path)
    assert r.status_code == 200, r.text
    attrs = r.json["attributes"]
    return attrs["occi.compute.state"], attrs.get("occi.compute.state.message", "")


def _host(service, name: str) -> dict:
    from occi.context import RequestContext

    return service_inventory(service).show_host(RequestContext.system(), name)


def service_inventory(service):
    from occi.inventory.service import InventoryService

    return InventoryService(service.store, Settings.from_mapping({}))


# ---------------------------------------------------------------------------------------------
# libvirt's test driver
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def libvirt_cloud(tmp_path):
    """A libvirt cluster of two test-driver hosts (hostA: 4 cores, hostB: 2), copied here."""
    uris = {}
    for name in ("hostA", "hostB"):
        shutil.copy(HOSTS / f"{name}.xml", tmp_path / f"{name}.xml")
        uris[name] = f"test://{tmp_path / f'{name}.xml'}"
    settings = Settings.from_mapping(
        {
            "database_url": f"sqlite:///{tmp_path}/lv.db",
            "auth": "none",
            "backend": "libvirt",
            "libvirt_uri": uris["hostA"],
            "libvirt_pool": "default-pool",
            "libvirt_console_dir": "",
            "host_check_interval": 0,  # the test runs the passes itself
            "reconcile_interval": 0,
            "host_down_after": DOWN_AFTER,
        }
    )
    # no job runner: requests run their own jobs, and no platform event reconciles a VM
    # behind the test's back (what it compares stays as the test left it)
    app, service = build(settings, upgrade=True, run_jobs=False)
    with service.store.begin() as tx:
        rows.drop_shorthand(tx.conn)
        zone = rows.add_zone(tx.conn, "z1")
        cluster = rows.add_cluster(tx.conn, "c1", zone, backend="libvirt")
        rows.add_host(tx.conn, "hostA", cluster, cores=4, memory_mb=4096, uri=uris["hostA"])
        rows.add_host(tx.conn, "hostB", cluster, cores=2, memory_mb=2048, uri=uris["hostB"])
    rows.announce(service)
    yield Api(testing.TestClient(app), service), tmp_path
    _stop(service)


def test_a_libvirt_host_that_disappears_and_returns(libvirt_cloud):
    api, tmp = libvirt_cloud
    monitor = api.service.monitor
    on_a = _compute(api, 3)  # hostA: 3 of 4 cores used
    on_b = _compute(api, 2)  # does not fit beside it: hostB, full
    r = api.post(f"{on_a}?action=start", {"action": ACTION + "start"})
    assert r.status_code == 200, r.text
    before = {p: _state(api, p) for p in (on_a, on_b)}
    assert before[on_a][0] == "active"

    first = monitor.check(now=T0)
    assert sorted(first.answered) == ["hostA", "hostB"] and not first.went_down

    (tmp / "hostA.xml").rename(tmp / "hostA.away")
    early = monitor.check(now=T0 + 1)  # silent, not yet for host_down_after
    assert early.silent == ["hostA"] and not early.went_down
    assert _host(api.service, "hostA")["state"] == "up"
    assert _state(api, on_a) == before[on_a]

    down = monitor.check(now=T0 + 1 + DOWN_AFTER)
    assert down.went_down == ["hostA"] and down.errored == 1
    host = _host(api.service, "hostA")
    assert host["state"] == "down"
    assert host["state_message"].startswith("host hostA does not answer: cannot connect to")
    state, message = _state(api, on_a)
    assert state == "error"
    assert message.startswith(
        f"host hostA does not answer: cannot connect to libvirt host test://{tmp}/"
    )
    assert _state(api, on_b) == before[on_b]  # the other host's VM is left alone
    again = monitor.check(now=T0 + 60)  # a transition is made (and logged) once
    assert not again.went_down and again.silent == ["hostA"]

    # the periodic reconcile does not flap it back (this process still holds the host's
    # connection, which would report the domain running)
    api.service.reconcile()
    assert _state(api, on_a) == (state, message)

    # hostA has room for one core, hostB none: with hostA down, nothing fits
    refused = api.post(
        "/compute/",
        {"kind": INFRA + "compute", "attributes": {"occi.compute.cores": 1}},
    )
    assert refused.status_code == 503, refused.text
    assert refused.headers["X-OCCI-Error-Code"] == "no_capacity"

    (tmp / "hostA.away").rename(tmp / "hostA.xml")
    back = monitor.check(now=T0 + 61)
    assert back.came_back == ["hostA"]
    host = _host(api.service, "hostA")
    assert host["state"] == "up" and host["state_message"] is None
    assert host["last_seen"] == T0 + 61
    state, message = _state(api, on_a)  # what libvirt reports of it now
    assert (state, message) == ("active", "running")
    assert _state(api, on_b)[0] == "inactive"  # observed by the reconcile above: never touched
    assert api.path_of(api.post("/compute/", {"kind": INFRA + "compute"})).startswith("/compute/")


def test_libvirt_host_capacity_of_a_test_host_whose_file_is_gone(tmp_path):
    from backends.libvirt.backend import LibvirtBackend

    shutil.copy(HOSTS / "hostB.xml", tmp_path / "h.xml")
    uri = f"test://{tmp_path / 'h.xml'}"
    backend = LibvirtBackend({"libvirt_uri": uri, "libvirt_console_dir": ""})
    try:
        assert backend.host_capacity(uri).cores == 2
        (tmp_path / "h.xml").unlink()
        with pytest.raises(Unreachable, match=f"^cannot connect to libvirt host {uri}: "):
            backend.host_capacity(uri)
    finally:
        backend.close()


# ---------------------------------------------------------------------------------------------
# the simulator
# ---------------------------------------------------------------------------------------------


def occi_simulator(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console script, with the server's database given as the server gets it."""
    script = Path(sys.executable).with_name("occi-simulator")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
    env["OCCI_DATABASE_URL"] = db_url
    return subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def sim_cloud(tmp_path):
    url = f"sqlite:///{tmp_path}/sim.db"
    settings = Settings.from_mapping(
        {
            "database_url": url,
            "auth": "none",
            "simulator_hosts": "sim1:2:4,sim2:2:4",
            "shorthand_cpu_overcommit": 1,
            "shorthand_memory_overcommit": 1,
            "host_check_interval": 0,
            "reconcile_interval": 0,
            "host_down_after": DOWN_AFTER,
        }
    )
    # no job runner: requests run their own jobs, and no platform event reconciles a VM
    # behind the test's back (what it compares stays as the test left it)
    app, service = build(settings, upgrade=True, run_jobs=False)
    yield Api(testing.TestClient(app), service), url
    _stop(service)


def test_a_simulated_host_switched_off_and_on(sim_cloud):
    api, url = sim_cloud
    monitor = api.service.monitor
    on_1, on_2 = _compute(api, 2), _compute(api, 2)  # one per host
    r = api.post(f"{on_1}?action=start", {"action": ACTION + "start"})
    assert r.status_code == 200, r.text
    before = {p: _state(api, p) for p in (on_1, on_2)}
    assert before[on_1][0] == "active"
    monitor.check(now=T0)

    off = occi_simulator(url, "hosts", "off", "sim1")
    assert off.returncode == 0, off.stderr
    assert "host sim1 is off now" in off.stdout
    listed = occi_simulator(url, "hosts", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].startswith("sim1\toff since ")
    assert listed.stdout.splitlines()[1] == "sim2\ton"

    # operations on its machines do not answer either (a restart's one-statement path too)
    entity = api.service.store.get_one(on_1.rsplit("/", 1)[-1], fresh=True)
    backend = api.service.pool.backend_for(entity)
    with pytest.raises(Unreachable, match="simulated host sim1 is switched off"):
        backend.action(entity, ACTION + "restart", {})
    with pytest.raises(Unreachable):
        backend.observe(entity)

    down = monitor.check(now=T0 + DOWN_AFTER)
    assert down.went_down == ["sim1"]
    state, message = _state(api, on_1)
    assert state == "error"
    assert message == "host sim1 does not answer: simulated host sim1 is switched off " + (
        "(occi-simulator hosts on sim1 restores it)"
    )
    assert _state(api, on_2) == before[on_2]

    on = occi_simulator(url, "hosts", "on", "sim1")
    assert on.returncode == 0, on.stderr
    back = monitor.check(now=T0 + DOWN_AFTER + 1)
    assert back.came_back == ["sim1"] and back.reconciled == 1
    assert _state(api, on_1) == before[on_1]
    assert occi_simulator(url, "hosts", "on", "sim1").stdout.startswith("host sim1 was on")


def test_occi_simulator_usage_errors(tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    assert occi_simulator(url, "hosts").returncode == 2  # no action
    assert occi_simulator(url, "hosts", "off").returncode == 2  # no name
    bad = occi_simulator(url, "hosts", "off", "no/such")
    assert bad.returncode == 2 and "invalid host name" in bad.stderr
    helped = occi_simulator(url, "--help")
    assert helped.returncode == 0 and "Exit codes" in helped.stdout
    broken = occi_simulator("sqlite:////nonexistent/dir/x.db", "hosts", "list")
    assert broken.returncode == 1 and "occi-simulator:" in broken.stderr


def test_only_the_lease_holder_checks(sim_cloud):
    api, _ = sim_cloud
    assert api.service.monitor.run_if_due(60) is not None
    assert api.service.monitor.run_if_due(60) is None  # held for the interval


# ---------------------------------------------------------------------------------------------
# what a user sees, over real HTTP
# ---------------------------------------------------------------------------------------------


def _poll(url: str, want: str, deadline: float) -> tuple[str, str]:
    """The compute's state and message once its state is `want` (polled until `deadline`)."""
    seen: tuple[str, str] = ("", "")
    while time.monotonic() < deadline:
        r = requests.get(url, headers={"Accept": "application/occi+json"}, timeout=10)
        assert r.status_code == 200, r.text
        attrs = r.json()["attributes"]
        seen = attrs["occi.compute.state"], attrs.get("occi.compute.state.message", "")
        if seen[0] == want:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"still {seen} instead of {want}")


def test_a_user_sees_the_vm_of_a_switched_off_host_in_error(tmp_path):
    url = f"sqlite:///{tmp_path}/occi.db"
    server = LiveServer(
        tmp_path,
        database_url=url,
        workers=1,
        host_check_interval=0.2,
        host_down_after=0.5,
        simulator_hosts="sim1:8:16",
    )
    try:
        made = requests.post(
            server.url + "/compute/",
            json={"kind": INFRA + "compute", "attributes": {"occi.compute.cores": 1}},
            headers={"Accept": "application/occi+json"},
            timeout=30,
        )
        assert made.status_code == 201, made.text
        location = made.headers["Location"]
        was = _poll(location, "inactive", time.monotonic() + 30)
        assert occi_simulator(url, "hosts", "off", "sim1").returncode == 0
        seen = _poll(location, "error", time.monotonic() + 60)
        assert seen[1].startswith("host sim1 does not answer: simulated host sim1 is switched")
        assert occi_simulator(url, "hosts", "on", "sim1").returncode == 0
        assert _poll(location, "inactive", time.monotonic() + 60) == was
    finally:
        server.stop()

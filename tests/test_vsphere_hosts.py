"""The hosts of a vCenter cluster (VMware's simulator, tests/vcsim): an administrator's cluster
with backend vsphere gets its hosts from vCenter (`hosts discover`), placement fills them by the
sizes vCenter reports and each VM is made on the host it was placed on, and a host's maintenance
moves its VMs away with RelocateVM_Task before vCenter's EnterMaintenanceMode_Task. The
one-cluster shorthand keeps its hosts when vCenter does not answer at a start.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pyVim.connect import Disconnect
from pyVmomi import vim

from backends.vsphere.core import instance_uuid
from occi.inventory import shorthand
from occi.settings import Settings
from occi.store import make_store
from tests import vcsim
from tests.live import free_port
from tests.test_maintenance import SYSTEM, Cloud, _settings

SIZE = {"cores": 2, "memory": 2.0}


@pytest.fixture
def cloud(tmp_path) -> Iterator[Cloud]:
    sim = vcsim.shared("vpx")
    c = Cloud(_settings(tmp_path))
    c.admin.create_zone(SYSTEM, {"name": "z1"})
    c.admin.create_cluster(
        SYSTEM, {"name": "vc", "zone": "z1", "backend": "vsphere", "settings": sim.settings()}
    )
    yield c
    c.close()


@pytest.fixture
def vsphere() -> Iterator[Any]:
    si = vcsim.shared("vpx").connect()
    yield si.RetrieveContent()
    Disconnect(si)


def vm_of(content: Any, location: str) -> Any:
    eid = location.rsplit("/", 1)[-1]
    return content.searchIndex.FindByUuid(uuid=instance_uuid(eid), vmSearch=True, instanceUuid=True)


def test_placement_fills_the_hosts_vcenter_lists_and_maintenance_moves_the_vms(cloud, vsphere):
    found = {h["name"]: h for h in cloud.admin.discover_hosts(SYSTEM, "vc")}
    assert {n: (h["cores"], h["memory_mb"]) for n, h in found.items()} == {
        "DC0_C0_H0": (8, 16384),
        "DC0_C0_H1": (2, 4095),
        "DC0_C0_H2": (2, 4095),
    }
    assert [h["name"] for h in cloud.admin.discover_hosts(SYSTEM, "vc")] == sorted(found)
    uri = {n: h["uri"] for n, h in found.items()}

    placed = [cloud.compute(**SIZE) for _ in range(6)]
    refused = cloud.api.post(
        "/compute/",
        {
            "kind": "http://schemas.ogf.org/occi/infrastructure#compute",
            "attributes": {"occi.compute.cores": 2, "occi.compute.memory": 2.0},
        },
    )
    assert refused.status_code == 503, refused.text
    on: dict[str, list[str]] = {}
    for c in placed:
        host = cloud.host_of(c)
        on.setdefault(host, []).append(c)
        assert vm_of(vsphere, c).runtime.host._moId == uri[host]  # made where it was placed
    assert {h: len(cs) for h, cs in on.items()} == {"DC0_C0_H0": 4, "DC0_C0_H1": 1, "DC0_C0_H2": 1}

    # two stay on H0, one of them running; the other hosts have room for one each
    for c in on["DC0_C0_H0"][2:] + on["DC0_C0_H1"] + on["DC0_C0_H2"]:
        assert cloud.api.delete(c).status_code in (200, 204)
    running, stopped = on["DC0_C0_H0"][:2]
    cloud.act(running, "start")
    doc = cloud.admin.host_action(SYSTEM, "DC0_C0_H0", "maintenance")
    assert (doc["admin_state"], doc["vms"]) == ("maintenance", 0), doc
    h0 = next(h for h in _hosts(vsphere) if h.name == "DC0_C0_H0")
    assert h0.runtime.inMaintenanceMode
    moved = {cloud.host_of(c) for c in (running, stopped)}
    assert moved == {"DC0_C0_H1", "DC0_C0_H2"}
    for c in (running, stopped):
        assert vm_of(vsphere, c).runtime.host._moId == uri[cloud.host_of(c)]
    assert vm_of(vsphere, running).runtime.powerState == "poweredOn"
    assert cloud.attributes(running)["occi.compute.state"] == "active"

    cloud.admin.host_action(SYSTEM, "DC0_C0_H0", "cancel-maintenance")
    assert not h0.runtime.inMaintenanceMode
    for c in (running, stopped):
        assert cloud.api.delete(c).status_code in (200, 204)


def _hosts(content: Any) -> list[Any]:
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def test_the_shorthand_keeps_its_hosts_when_vcenter_does_not_answer(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    store = make_store(url)
    store.upgrade()
    sim = vcsim.shared("vpx")

    def start(**more: str) -> dict[str, tuple[str | None, int]]:
        settings = Settings.from_mapping(
            {"database_url": url, "backend": "vsphere", **sim.settings(**more)}
        )
        assert shorthand.ensure(store, settings)
        with store.begin(readonly=True) as tx:
            from occi.inventory.store import InventoryTx

            return {h.name: (h.uri, h.cores) for h in InventoryTx(tx).hosts(None)}  # type: ignore[arg-type]

    try:
        first = start()
        assert sorted(first) == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
        closed = f"https://127.0.0.1:{free_port()}/sdk"  # nothing listens there
        assert start(vsphere_url=closed) == first
    finally:
        store.close()


def test_hosts_discover_from_the_command_line(tmp_path, monkeypatch, capsys):
    from occi.cli import main

    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("OCCI_SECRET_KEY", "a key for the discover test")
    monkeypatch.delenv("OCCI_CONFIG", raising=False)
    cli = lambda *argv: main([*argv, "--database-url", url])  # noqa: E731
    settings = [f"--setting={k}={v}" for k, v in vcsim.shared("vpx").settings().items()]
    assert cli("migrate") == 0
    assert cli("zones", "create", "z1") == 0
    assert cli("clusters", "create", "vc", "--zone", "z1", "--backend", "vsphere", *settings) == 0
    assert cli("clusters", "create", "sim", "--zone", "z1", "--backend", "simulator") == 0
    capsys.readouterr()
    assert cli("hosts", "discover", "vc", "--json") == 0

    listed = json.loads(capsys.readouterr().out)
    assert sorted(h["name"] for h in listed) == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
    assert all(h["cluster"] == "vc" and h["state"] == "up" for h in listed)
    assert cli("hosts", "discover", "sim") == 1  # the simulator lists no hosts of its own
    assert "does not list its hosts" in capsys.readouterr().err


@pytest.fixture
def admin_api(sqlite_url) -> Iterator[Any]:
    """The app's admin API with an administrator and a member (tokens), on SQLite."""
    from falcon import testing

    from occi.api.wsgi import build
    from occi.identity.passwords import hash_password
    from occi.identity.store import IdentityTx
    from tests.api.test_admin_api import Admin

    settings = Settings.from_mapping(
        {"database_url": sqlite_url, "auth": "token", "secret_key": "a test key, long enough"}
    )
    app, service = build(settings, upgrade=True, run_jobs=False)
    tokens = {}
    with service.store.begin() as tx:
        ids = IdentityTx(tx)
        for name, role in (("member", "member"), ("root", "admin")):
            ids.create_user(name, password_hash=hash_password(f"{name}-password"))
            ids.grant(name, None if role == "admin" else "default", role)
            tokens["admin" if name == "root" else name] = ids.create_token(name)[1]
    yield Admin(testing.TestClient(app), service, tokens)
    service.store.close()
    service.backend.close()


def test_discover_hosts_over_the_admin_api(admin_api):
    settings = vcsim.shared("vpx").settings()
    admin_api.ok("POST", "/zones", {"name": "z1"}, status=201)
    body = {"name": "vc", "zone": "z1", "backend": "vsphere", "settings": settings}
    admin_api.ok("POST", "/clusters", body, status=201)
    assert admin_api.call("member", "POST", "/clusters/vc/discover-hosts").status_code == 403
    assert admin_api.call("admin", "POST", "/clusters/nope/discover-hosts").status_code == 404
    listed = admin_api.ok("POST", "/clusters/vc/discover-hosts")["hosts"]
    assert sorted(h["name"] for h in listed) == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]
    shown = admin_api.ok("GET", "/clusters/vc")
    assert settings["vsphere_password"] not in json.dumps(shown)  # masked
    r = admin_api.call("admin", "POST", "/clusters/default/discover-hosts")  # the simulator's
    assert r.status_code == 400 and "does not list its hosts" in r.json["error"]["message"]

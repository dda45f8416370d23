"""Link states follow the resources they join (GFD.224): over the API on the simulator, and
through the service on the libvirt test driver."""

from __future__ import annotations

import uuid

import pytest

from occi import infrastructure as infra
from occi import states
from occi.context import RequestContext
from occi.model import ActionInvocation, Link, Resource
from occi.service import Service
from occi.store import make_store
from tests.api.conftest import INFRA

COMPUTE_ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"


def act(api, path, kind, term):
    r = api.post(
        path,
        {"action": f"http://schemas.ogf.org/occi/infrastructure/{kind}/action#{term}"},
        params={"action": term},
    )
    assert r.status_code == 200, r.text


def link_state(api, path, kind):
    r = api.get(path)
    assert r.status_code == 200, r.text
    return r.json["attributes"][f"occi.{kind}.state"]


def test_links_follow_compute_storage_and_network_over_the_api(api):
    vm = api.path_of(api.create("compute"))
    disk = api.path_of(api.create("storage", {"occi.storage.size": 5.0}))
    net = api.path_of(api.create("network"))
    made = {}
    for kind, target in (("storagelink", disk), ("networkinterface", net)):
        r = api.post(
            f"/link/{kind}/",
            {
                "kind": INFRA + kind,
                "source": {"location": vm},
                "target": {"location": target},
                "attributes": {},
            },
        )
        assert r.status_code == 201, r.text
        made[kind] = api.path_of(r)
    sl, ni = made["storagelink"], made["networkinterface"]
    # created on an inactive compute, to an offline volume and a network that is down
    assert link_state(api, sl, "storagelink") == "inactive"
    assert link_state(api, ni, "networkinterface") == "inactive"

    act(api, vm, "compute", "start")
    assert link_state(api, sl, "storagelink") == "inactive"  # the volume is still offline
    assert link_state(api, ni, "networkinterface") == "inactive"  # the network is down
    # and each says what it waits for, now that the compute runs
    message = api.get(sl).json["attributes"]["occi.storagelink.state.message"]
    assert "storage is offline" in message and "compute" not in message

    act(api, disk, "storage", "online")
    act(api, net, "network", "up")
    assert link_state(api, sl, "storagelink") == "active"
    assert link_state(api, ni, "networkinterface") == "active"

    act(api, net, "network", "down")
    assert link_state(api, ni, "networkinterface") == "inactive"
    assert link_state(api, sl, "storagelink") == "active"
    act(api, net, "network", "up")

    act(api, vm, "compute", "stop")
    assert link_state(api, sl, "storagelink") == "inactive"
    assert link_state(api, ni, "networkinterface") == "inactive"
    message = api.get(sl).json["attributes"]["occi.storagelink.state.message"]
    assert "compute is inactive" in message

    act(api, vm, "compute", "start")
    assert link_state(api, sl, "storagelink") == "active"
    act(api, disk, "storage", "offline")
    assert link_state(api, sl, "storagelink") == "inactive"
    # the links rendered inside the compute say the same
    inline = {ln["kind"]: ln["attributes"] for ln in api.get(vm).json["links"]}
    assert inline[INFRA + "storagelink"]["occi.storagelink.state"] == "inactive"
    assert inline[INFRA + "networkinterface"]["occi.networkinterface.state"] == "active"


def test_reconcile_keeps_the_derived_link_state(api):
    vm = api.path_of(api.create("compute"))
    disk = api.path_of(api.create("storage", {"occi.storage.size": 5.0}))
    r = api.post(
        "/link/storagelink/",
        {"kind": INFRA + "storagelink", "source": {"location": vm}, "target": {"location": disk}},
    )
    sl = api.path_of(r)
    act(api, vm, "compute", "start")  # the simulator plugs the disk into the running machine
    before = api.get(sl).headers["etag"]
    api.service.reconcile()
    api.service.reconcile()
    # the volume is offline, so the link stays inactive, and reconciling writes nothing
    assert link_state(api, sl, "storagelink") == "inactive"
    assert api.get(sl).headers["etag"] == before


def test_link_state_rule():
    c, s, n = infra.COMPUTE, infra.STORAGE, infra.NETWORK
    assert states.link_state(c, "active", s, "online")[0] == "active"
    assert states.link_state(c, "suspended", s, "online")[0] == "inactive"
    assert states.link_state(c, "active", n, "inactive")[0] == "inactive"
    assert states.link_state(c, "error", n, "active")[0] == "error"
    assert states.link_state(c, "active", None, None)[0] == "active"  # an external target


# ---------------------------------------------------------------- libvirt test driver
@pytest.fixture
def libvirt_service(tmp_path):
    pytest.importorskip("libvirt")
    from tests.backends.test_contract import libvirt_backend

    store = make_store(f"sqlite:///{tmp_path}/lv.db")
    store.upgrade()
    backend = libvirt_backend()
    service = Service(store, backend)
    yield service
    if service.runner is not None:
        service.runner.stop()
    store.close()
    backend.close()


def test_links_follow_the_compute_on_the_libvirt_test_driver(libvirt_service):
    service = libvirt_service
    image = next(m.id for m in service.backend.provider_mixins() if infra.OS_TPL.id in m.depends)
    tag = uuid.uuid4().hex[:8]
    vm = Resource(
        infra.COMPUTE.id,
        f"lvc-{tag}",
        mixins=[image],
        attributes={"occi.compute.cores": 1, "occi.compute.memory": 0.25},
    )
    disk = Resource(infra.STORAGE.id, f"lvs-{tag}", attributes={"occi.storage.size": 0.01})
    ctx = RequestContext.system()
    vm_at = service.create(ctx, "/compute/", [vm])[0].location
    disk_at = service.create(ctx, "/storage/", [disk])[0].location
    link = Link(infra.STORAGELINK.id, source=vm_at, target=disk_at)
    link_id = service.create(ctx, "/link/storagelink/", [link])[0].id

    def state() -> str:
        link = service.get(ctx, infra.STORAGELINK, link_id, fresh=True)
        return link.attributes["occi.storagelink.state"]

    def do(path: str, kind: str, term: str) -> None:
        scheme = f"http://schemas.ogf.org/occi/infrastructure/{kind}/action#"
        kind_id = f"http://schemas.ogf.org/occi/infrastructure#{kind}"
        service.act(ctx, kind_id, path.rsplit("/", 1)[1], term, ActionInvocation(scheme + term))

    assert state() == "inactive"
    do(disk_at, "storage", "online")
    assert state() == "inactive"  # the compute is not running
    do(vm_at, "compute", "start")
    assert state() == "active"
    do(vm_at, "compute", "suspend")
    assert state() == "inactive"
    do(vm_at, "compute", "start")
    assert state() == "active"
    do(vm_at, "compute", "stop")
    assert state() == "inactive"
    service.reconcile()
    assert state() == "inactive"
    service.delete(ctx, infra.COMPUTE, vm_at.rsplit("/", 1)[1])
    service.delete(ctx, infra.STORAGE.id, disk_at.rsplit("/", 1)[1])

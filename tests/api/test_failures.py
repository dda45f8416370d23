"""What a client gets when the platform's work fails, through the real app: 502 Bad Gateway
with the platform's message (503 when the platform cannot be reached), 409 only when the
request conflicts with the entity's state; an entity whose platform work failed can always be
deleted; a storage attached to a running compute is detached first or the delete is refused.

On the simulator and on libvirt's test driver (`test:///default`).
"""

from __future__ import annotations

import uuid

import pytest
from falcon import testing

from backends.base import NotFoundOnPlatform
from occi.api.wsgi import build
from occi.context import RequestContext
from occi.model import Link
from occi.settings import Settings
from tests.api.conftest import INFRA, Api
from tests.backends.test_contract import TEST_POOL, TEST_URI

ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
SIZE = {"occi.compute.cores": 1, "occi.compute.memory": 0.25}


@pytest.fixture
def make_api(tmp_path):
    made: list[Api] = []

    def make(**extra) -> Api:
        settings = Settings.from_mapping(
            {"database_url": f"sqlite:///{tmp_path}/f{len(made)}.db", "auth": "none", **extra}
        )
        app, service = build(settings, upgrade=True)
        api = Api(testing.TestClient(app), service)
        made.append(api)
        return api

    yield make
    for api in made:
        if api.service.runner is not None:
            api.service.runner.stop()
        api.service.store.close()
        api.service.backend.close()


def libvirt(**extra) -> dict:
    return {
        "backend": "libvirt",
        "libvirt_uri": TEST_URI,
        "libvirt_pool": TEST_POOL,
        "libvirt_console_dir": "",
        "job_max_attempts": 2,
        **extra,
    }


def post(api: Api, kind: str, attributes=None, **extra):
    return api.post(f"/{kind}/", {"kind": INFRA + kind, "attributes": attributes or {}, **extra})


def error_of(r) -> str:
    return r.json["error"]["message"]


# ---------------------------------------------------------------------------- deletable
def test_compute_whose_pool_is_missing_goes_to_error_and_can_be_deleted(make_api):
    pool = f"occi-missing-{uuid.uuid4().hex[:8]}"
    api = make_api(**libvirt(libvirt_pool=pool))
    r = post(api, "compute", SIZE)
    assert r.status_code == 502, r.text
    assert pool in error_of(r)
    path = api.path_of(r)  # the 502 says where the entity in error is
    a = api.get(path).json["attributes"]
    assert a["occi.compute.state"] == "error"
    assert pool in a["occi.compute.state.message"]
    r = api.delete(path)
    assert r.status_code == 200, r.text
    assert api.get(path).status_code == 404
    assert api.count("/compute/") == 0


def test_entity_whose_create_failed_on_the_simulator_can_be_deleted(make_api):
    api = make_api(simulator_fail="create", job_max_attempts=2)
    r = post(api, "storage", {"occi.storage.size": 1})
    assert r.status_code == 502, r.text
    assert "simulated failure of create" in error_of(r)
    path = api.path_of(r)
    assert api.get(path).json["attributes"]["occi.storage.state"] == "error"
    assert api.delete(path).status_code == 200
    assert api.get(path).status_code == 404


# ---------------------------------------------------------------------------- statuses
def test_failed_action_is_502_with_the_platform_message(make_api):
    api = make_api(simulator_fail="start", job_max_attempts=2)
    path = api.path_of(api.create("compute"))
    r = api.post(path, {"action": ACTION + "start"}, params={"action": "start"})
    assert r.status_code == 502, r.text
    assert "simulated failure of start" in error_of(r)
    assert "location" not in r.headers  # nothing new was made
    assert api.get(path).json["attributes"]["occi.compute.state"] == "error"


def test_failed_action_on_a_collection_is_502(make_api):
    api = make_api(simulator_fail="start", job_max_attempts=2)
    api.create("compute")
    r = api.post("/compute/", None, params={"action": "start"})
    assert r.status_code == 502, r.text
    assert "simulated failure of start" in error_of(r)


def test_put_that_creates_and_fails_is_502(make_api):
    api = make_api(simulator_fail="create", job_max_attempts=2)
    r = api.put("/compute/broken", {"kind": INFRA + "compute"})
    assert r.status_code == 502, r.text
    assert api.path_of(r) == "/compute/broken"
    assert api.get("/compute/broken").json["attributes"]["occi.compute.state"] == "error"


def test_failed_platform_delete_is_502_and_the_entity_stays(make_api):
    api = make_api(simulator_fail="delete", job_max_attempts=2)
    path = api.path_of(api.create("network"))
    r = api.delete(path)
    assert r.status_code == 502, r.text
    assert "simulated failure of delete" in error_of(r)
    assert api.get(path).status_code == 200


def test_unreachable_platform_is_503(make_api):
    api = make_api(**libvirt(libvirt_uri="qemu+tcp://127.0.0.1:1/system"))
    r = post(api, "compute", SIZE)
    assert r.status_code == 503, r.text
    assert "127.0.0.1:1" in error_of(r)
    path = api.path_of(r)
    assert api.get(path).json["attributes"]["occi.compute.state"] == "error"


def test_a_refused_transition_stays_409(make_api):
    api = make_api(**libvirt())
    path = api.path_of(api.create("compute", SIZE))
    r = api.post(path, {"action": ACTION + "suspend"}, params={"action": "suspend"})
    assert r.status_code == 409, r.text
    assert "suspend needs it active" in error_of(r)
    assert api.get(path).json["attributes"]["occi.compute.state"] == "inactive"


# ---------------------------------------------------------------------------- attached storage
def running_compute_with_disk(api: Api) -> tuple[str, str, str]:
    compute = api.path_of(api.create("compute", SIZE))
    storage = api.path_of(api.create("storage", {"occi.storage.size": 1}))
    r = api.post(
        "/link/storagelink/",
        {"kind": INFRA + "storagelink", "source": compute, "target": storage},
    )
    assert r.status_code == 201, r.text
    link = api.path_of(r)
    r = api.post(compute, {"action": ACTION + "start"}, params={"action": "start"})
    assert r.status_code == 200, r.text
    assert r.json["attributes"]["occi.compute.state"] == "active"
    return compute, storage, link


def platform_link(api: Api, link: str) -> Link:
    kind = api.service.registry().kind_for_path(link)
    assert kind is not None
    stored = api.service.get(RequestContext.system(), kind, link.rsplit("/", 1)[1])
    assert isinstance(stored, Link)
    return stored


def test_deleting_attached_storage_detaches_it_first_on_the_simulator(make_api):
    api = make_api()
    compute, storage, link = running_compute_with_disk(api)
    disk = platform_link(api, link)
    r = api.delete(storage)
    assert r.status_code == 200, r.text
    assert api.get(storage).status_code == 404
    assert api.get(link).status_code == 404
    with pytest.raises(NotFoundOnPlatform):  # detached on the platform too
        api.service.backend.observe(disk)
    assert api.get(compute).json["attributes"]["occi.compute.state"] == "active"


def test_deleting_attached_storage_is_refused_where_it_cannot_be_detached(make_api):
    api = make_api(**libvirt())
    compute, storage, link = running_compute_with_disk(api)
    r = api.delete(storage)
    assert r.status_code == 409, r.text
    message = error_of(r)
    assert compute in message and "stop" in message
    # nothing changed: the disk is still attached, on the platform too
    assert api.get(storage).status_code == 200
    assert api.get(link).status_code == 200
    disk = platform_link(api, link)
    assert api.service.backend.observe(disk).attributes["occi.storagelink.state"] == "active"
    # stopped, it can go
    r = api.post(
        compute,
        {"action": ACTION + "stop", "attributes": {"method": "poweroff"}},
        params={"action": "stop"},
    )
    assert r.status_code == 200, r.text
    assert api.delete(storage).status_code == 200
    assert api.get(link).status_code == 404
    with pytest.raises(NotFoundOnPlatform):
        api.service.backend.observe(disk)

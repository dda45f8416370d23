"""A backend written only against the typed contract (backends.base: compute_start,
storage_resize, link_attach, ...) works end to end: the real app and its executor drive it
through a user's requests. And a backend implementing neither the typed nor the generic side of
an operation is refused when its class is made, instead of recursing for ever at run time.

TypedOnly keeps its platform in dicts; it is a real backend, only a small one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from falcon import testing

from backends.base import (
    LINK_HOTPLUG,
    LINK_OFFLINE,
    STORAGE_RESIZE,
    Backend,
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    RestartMethod,
    SaveMethod,
    StopMethod,
    SuspendMethod,
    Unsupported,
    kind_of,
)
from occi.api import wsgi
from occi.model import Entity, Link, Mixin, Resource
from occi.settings import Settings
from tests.api.conftest import Api

STATE = {
    "compute": "occi.compute.state",
    "storage": "occi.storage.state",
    "network": "occi.network.state",
}


class TypedOnly(Backend):
    """Implements the typed methods, observe and provider_mixins; none of the generic ones."""

    name = "typed-only"
    capabilities = frozenset({STORAGE_RESIZE, LINK_HOTPLUG, LINK_OFFLINE})
    reconcile_needed = False

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self.objects: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        #: (typed method, its arguments beyond the entity), in the order called
        self.calls: list[tuple[Any, ...]] = []

    def provider_mixins(self) -> list[Mixin]:
        return []

    # ------------------------------------------------------------------ helpers
    def _made(self, entity: Resource, state: str, **values: Any) -> Outcome:
        kind = kind_of(entity)
        assert kind is not None and entity.id
        obj = self.objects.setdefault(entity.id, {"kind": kind, "state": state, **values})
        return self._outcome(obj)

    def _outcome(self, obj: dict[str, Any]) -> Outcome:
        key = STATE[obj["kind"]]
        values = {k: v for k, v in obj.items() if k.startswith("occi.")}
        return Outcome({key: obj["state"], f"{key}.message": obj["state"], **values})

    def _move(self, entity: Resource, allowed: tuple[str, ...], to: str) -> Outcome:
        obj = self.objects.get(entity.id or "")
        if obj is None:
            raise NotFoundOnPlatform(f"{entity.id} is not on the platform")
        if obj["state"] not in allowed:
            raise InvalidTransition(f"{entity.id} is {obj['state']}")
        obj["state"] = to
        return self._outcome(obj)

    def _gone(self, entity: Entity) -> None:
        self.objects.pop(entity.id or "", None)

    # ------------------------------------------------------------------ compute
    def compute_create(self, entity: Resource) -> Outcome:
        self.calls.append(("compute_create",))
        a = entity.attributes
        return self._made(
            entity,
            "inactive",
            **{
                "occi.compute.cores": a.get("occi.compute.cores", 1),
                "occi.compute.memory": a.get("occi.compute.memory", 1.0),
            },
        )

    def compute_start(self, entity: Resource) -> Outcome:
        self.calls.append(("compute_start",))
        return self._move(entity, ("inactive", "suspended"), "active")

    def compute_stop(self, entity: Resource, method: StopMethod | None = None) -> Outcome:
        self.calls.append(("compute_stop", method))
        return self._move(entity, ("active",), "inactive")

    def compute_restart(self, entity: Resource, method: RestartMethod | None = None) -> Outcome:
        self.calls.append(("compute_restart", method))
        return self._move(entity, ("active",), "active")

    def compute_suspend(self, entity: Resource, method: SuspendMethod | None = None) -> Outcome:
        self.calls.append(("compute_suspend", method))
        return self._move(entity, ("active",), "suspended")

    def compute_save(
        self, entity: Resource, method: SaveMethod | None = None, name: str | None = None
    ) -> Outcome:
        raise Unsupported("no images here")

    def compute_resize(
        self, entity: Resource, cores: int | None, memory_gb: float | None
    ) -> Outcome:
        self.calls.append(("compute_resize", cores, memory_gb))
        obj = self.objects[entity.id or ""]
        if cores is not None:
            obj["occi.compute.cores"] = cores
        if memory_gb is not None:
            obj["occi.compute.memory"] = memory_gb
        return self._outcome(obj)

    def compute_delete(self, entity: Resource) -> None:
        self.calls.append(("compute_delete",))
        self._gone(entity)

    # ------------------------------------------------------------------ storage
    def storage_create(self, entity: Resource) -> Outcome:
        self.calls.append(("storage_create",))
        size = entity.attributes.get("occi.storage.size", 1.0)
        return self._made(entity, "offline", **{"occi.storage.size": size})

    def storage_resize(self, entity: Resource, size_gb: float) -> Outcome:
        self.calls.append(("storage_resize", size_gb))
        obj = self.objects[entity.id or ""]
        if size_gb < obj["occi.storage.size"]:
            raise InvalidTransition("volumes only grow")
        obj["occi.storage.size"] = size_gb
        return self._outcome(obj)

    def storage_online(self, entity: Resource) -> Outcome:
        self.calls.append(("storage_online",))
        return self._move(entity, ("offline",), "online")

    def storage_offline(self, entity: Resource) -> Outcome:
        self.calls.append(("storage_offline",))
        return self._move(entity, ("online",), "offline")

    def storage_delete(self, entity: Resource) -> None:
        self.calls.append(("storage_delete",))
        self._gone(entity)

    # ------------------------------------------------------------------ network
    def network_create(self, entity: Resource) -> Outcome:
        self.calls.append(("network_create",))
        return self._made(entity, "inactive")

    def network_up(self, entity: Resource) -> Outcome:
        self.calls.append(("network_up",))
        return self._move(entity, ("inactive",), "active")

    def network_down(self, entity: Resource) -> Outcome:
        self.calls.append(("network_down",))
        return self._move(entity, ("active",), "inactive")

    def network_delete(self, entity: Resource) -> None:
        self.calls.append(("network_delete",))
        self._gone(entity)

    # ------------------------------------------------------------------ links
    def link_attach(self, link: Link, source: Resource, target: Resource | None) -> Outcome:
        self.calls.append(("link_attach", source.id, target.id if target else None))
        if link.kind.endswith("#networkinterface"):
            values = {
                "occi.networkinterface.interface": "eth0",
                "occi.networkinterface.mac": "52:54:00:00:00:01",
                "occi.networkinterface.state": "active",
                "occi.networkinterface.state.message": "plugged in",
            }
        else:
            values = {
                "occi.storagelink.deviceid": "vdb",
                "occi.storagelink.state": "active",
                "occi.storagelink.state.message": "plugged in",
            }
        self.devices[link.id or ""] = values
        return Outcome(dict(values))

    def link_detach(self, link: Link) -> None:
        self.calls.append(("link_detach",))
        self.devices.pop(link.id or "", None)

    # ------------------------------------------------------------------ reconciliation
    def observe(self, entity: Entity) -> Outcome:
        if entity.is_link:
            found = self.devices.get(entity.id or "")
            if found is None:
                raise NotFoundOnPlatform(f"no device {entity.id}")
            return Outcome(dict(found))
        obj = self.objects.get(entity.id or "")
        if obj is None:
            raise NotFoundOnPlatform(f"{entity.id} is not on the platform")
        return self._outcome(obj)


@pytest.fixture
def typed_api(tmp_path, monkeypatch) -> Iterator[Api]:
    """The real app (store, executor, job runner) over a TypedOnly backend."""
    monkeypatch.setattr(wsgi, "load_backend", lambda name, settings: TypedOnly(settings))
    settings = Settings.from_mapping(
        {"database_url": f"sqlite:///{tmp_path}/typed.db", "auth": "none", "max_body": 65536}
    )
    app, service = wsgi.build(settings, upgrade=True)
    assert isinstance(service.backend, TypedOnly)
    yield Api(testing.TestClient(app), service)
    if service.runner is not None:
        service.runner.stop()
    service.store.close()


def names(backend: TypedOnly) -> list[str]:
    return [call[0] for call in backend.calls]


def state(api: Api, path: str, kind: str) -> Any:
    r = api.get(path)
    assert r.status_code == 200, r.text
    return r.json["attributes"][STATE[kind]]


def act(api: Api, path: str, term: str, **params: Any) -> Any:
    body = {"attributes": params} if params else None
    r = api.post(path, body, params={"action": term})
    assert r.status_code == 200, r.text
    return r.json


def test_a_compute_lives_through_the_typed_contract(typed_api):
    api, backend = typed_api, typed_api.service.backend
    path = api.path_of(api.create("compute", {"occi.compute.cores": 2}))
    assert state(api, path, "compute") == "inactive"
    assert act(api, path, "start")["attributes"]["occi.compute.state"] == "active"
    act(api, path, "restart", method="warm")
    act(api, path, "suspend", method="hibernate")
    assert state(api, path, "compute") == "suspended"
    act(api, path, "start")
    out = act(api, path, "stop", method="graceful")
    assert out["attributes"]["occi.compute.state"] == "inactive"
    r = api.post(path, {"attributes": {"occi.compute.cores": 4, "occi.compute.memory": 2.0}})
    assert r.status_code == 200, r.text
    assert r.json["attributes"]["occi.compute.cores"] == 4
    assert api.delete(path).status_code in (200, 204)
    assert api.get(path).status_code == 404
    assert backend.calls == [
        ("compute_create",),
        ("compute_start",),
        ("compute_restart", "warm"),
        ("compute_suspend", "hibernate"),
        ("compute_start",),
        ("compute_stop", "graceful"),
        ("compute_resize", 4, 2.0),
        ("compute_delete",),
    ]
    assert backend.objects == {}


def test_a_stop_without_a_method_gets_the_occi_default(typed_api):
    api, backend = typed_api, typed_api.service.backend
    path = api.path_of(api.create("compute"))
    act(api, path, "start")
    act(api, path, "stop")
    assert ("compute_stop", "graceful") in backend.calls


def test_what_the_typed_backend_refuses_reaches_the_user_as_such(typed_api):
    """A typed method's InvalidTransition and Unsupported answer as they would from the
    generic contract: 409 and 501, never 500."""
    api = typed_api
    path = api.path_of(api.create("compute"))
    act(api, path, "start")
    assert api.post(path, None, params={"action": "start"}).status_code == 409
    assert api.post(path, None, params={"action": "save"}).status_code == 501
    # an attribute without a typed operation (the hostname) is beyond this backend
    r = api.post(path, {"attributes": {"occi.compute.hostname": "db1"}})
    assert r.status_code == 501, r.text


def test_storage_and_network_through_the_typed_contract(typed_api):
    api, backend = typed_api, typed_api.service.backend
    disk = api.path_of(api.create("storage", {"occi.storage.size": 1}))
    assert state(api, disk, "storage") == "offline"
    assert act(api, disk, "online")["attributes"]["occi.storage.state"] == "online"
    r = api.post(disk, {"attributes": {"occi.storage.size": 3}})
    assert r.status_code == 200, r.text
    assert r.json["attributes"]["occi.storage.size"] == 3
    act(api, disk, "offline")
    net = api.path_of(api.create("network"))
    assert act(api, net, "up")["attributes"]["occi.network.state"] == "active"
    assert act(api, net, "down")["attributes"]["occi.network.state"] == "inactive"
    assert api.delete(disk).status_code in (200, 204)
    assert api.delete(net).status_code in (200, 204)
    assert names(backend) == [
        "storage_create",
        "storage_online",
        "storage_resize",
        "storage_offline",
        "network_create",
        "network_up",
        "network_down",
        "storage_delete",
        "network_delete",
    ]
    assert ("storage_resize", 3.0) in backend.calls
    assert backend.objects == {}


def test_links_attach_and_detach_through_the_typed_contract(typed_api):
    api, backend = typed_api, typed_api.service.backend
    comp = api.path_of(api.create("compute"))
    net = api.path_of(api.create("network"))
    disk = api.path_of(api.create("storage", {"occi.storage.size": 1}))
    nic = api.post(
        "/link/networkinterface/",
        {
            "kind": wsgi_infra("networkinterface"),
            "source": {"location": comp},
            "target": {"location": net},
        },
    )
    assert nic.status_code == 201, nic.text
    link = api.post(
        "/link/storagelink/",
        {
            "kind": wsgi_infra("storagelink"),
            "source": {"location": comp},
            "target": {"location": disk},
        },
    )
    assert link.status_code == 201, link.text
    shown = api.get(api.path_of(nic)).json["attributes"]
    assert shown["occi.networkinterface.mac"] == "52:54:00:00:00:01"
    assert len(backend.devices) == 2
    assert api.delete(api.path_of(nic)).status_code in (200, 204)
    assert api.delete(api.path_of(link)).status_code in (200, 204)
    assert backend.devices == {}
    assert names(backend).count("link_attach") == 2
    assert names(backend).count("link_detach") == 2


def wsgi_infra(term: str) -> str:
    return "http://schemas.ogf.org/occi/infrastructure#" + term


# ---------------------------------------------------------------------------- the guard
def test_a_backend_implementing_neither_side_is_refused_when_made():
    with pytest.raises(TypeError) as caught:

        class Neither(Backend):
            def provider_mixins(self) -> list[Mixin]:
                return []

            def observe(self, entity: Entity) -> Outcome:
                return Outcome()

    message = str(caught.value)
    for generic in ("create", "update", "delete", "action", "link", "unlink"):
        assert f"{generic} (or all of" in message
    assert "compute_start" in message and "link_attach" in message


def test_a_backend_missing_one_typed_method_is_refused_naming_it():
    members = {
        n: getattr(TypedOnly, n)
        for n in vars(TypedOnly)
        if n.startswith(("compute_", "storage_", "network_", "link_")) and n != "network_down"
    }
    with pytest.raises(TypeError, match=r"action \(or all of network_down\)"):
        type("AlmostTyped", (Backend,), members)


def test_the_generic_calls_reach_a_typed_only_backend():
    """The generic methods still work on a typed-only backend (their defaults dispatch)."""
    b = TypedOnly()
    c = Resource(kind=wsgi_infra("compute"), id="c1", attributes={"occi.compute.cores": 1})
    assert b.create(c).attributes["occi.compute.state"] == "inactive"
    assert (
        b.action(
            c, "http://schemas.ogf.org/occi/infrastructure/compute/action#start", {}
        ).attributes["occi.compute.state"]
        == "active"
    )
    b.action(c, "stop", {"method": "poweroff"})
    assert b.calls[-1] == ("compute_stop", "poweroff")
    with pytest.raises(Unsupported):
        b.action(c, "up", {})
    assert b.update(c, {"occi.compute.cores": 3}).attributes["occi.compute.cores"] == 3
    with pytest.raises(Unsupported):
        b.update(c, {"occi.compute.hostname": "x"})
    with pytest.raises(Unsupported):
        b.migrate(c, "test:///elsewhere", live=True)
    assert b.delete(c) is None
    assert b.objects == {}


def test_migrate_reaches_a_typed_compute_migrate():
    """The server's maintenance calls `migrate`; a typed backend answers it in
    compute_migrate."""

    class Moving(TypedOnly):
        def compute_migrate(self, entity: Resource, target_uri: str | None, live: bool) -> Outcome:
            self.calls.append(("compute_migrate", target_uri, live))
            return self._outcome(self.objects[entity.id or ""])

    b = Moving()
    c = Resource(kind=wsgi_infra("compute"), id="c2")
    b.compute_create(c)
    out = b.migrate(c, "test:///other", live=False)
    assert isinstance(out, Outcome) and out.attributes["occi.compute.state"] == "inactive"
    assert b.calls[-1] == ("compute_migrate", "test:///other", False)

"""Who may do what: every route of the verb matrix, sent as anonymous, a reader of the project,
a member of another project, a member and an admin, through the real app with authentication
on (tokens, HTTP Basic) and the real store. Each case asserts the status, and for a refused
write that nothing changed (the member reads the entity back at the same version).

The project `alpha` holds the entities; `beta` is another project. Another project's entity is
"not found", exactly like a missing one; a reader gets 403 on every write; anonymous gets 401.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from falcon import testing

from occi.api.wsgi import build
from occi.identity.passwords import hash_password
from occi.identity.store import IdentityTx
from occi.settings import Settings

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
USER_SCHEME = "http://example.com/matrix#"
JSON = "application/occi+json"

WHO = ("anonymous", "reader", "other", "member", "admin")


@dataclass
class Cloud:
    client: testing.TestClient
    service: object
    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        h = {"Accept": JSON}
        if who == "anonymous":
            return h
        h["Authorization"] = f"Bearer {self.tokens[who]}"
        if who == "admin":
            h["X-OCCI-Project"] = "alpha"
        return h

    def call(self, who: str, method: str, path: str, body=None, headers=None):
        h = self.headers(who)
        if body is not None:
            h["Content-Type"] = JSON
            body = json.dumps(body)
        h.update(headers or {})
        path, _, query = path.partition("?")
        return self.client.simulate_request(method, path, query_string=query, body=body, headers=h)

    # -- what the member of alpha builds for each case ----------------------------------------
    def create(self, kind: str, attributes=None, **extra) -> str:
        doc = {"kind": INFRA + kind, "attributes": attributes or {}, **extra}
        r = self.call("member", "POST", f"/{kind}/", doc)
        assert r.status_code == 201, r.text
        return urlsplit(r.headers["location"]).path

    def version(self, path: str) -> str | None:
        r = self.call("member", "GET", path)
        return r.headers.get("etag") if r.status_code == 200 else None

    def mixin(self) -> tuple[str, str]:
        term = "m" + uuid.uuid4().hex[:8]
        doc = {"mixins": [{"scheme": USER_SCHEME, "term": term, "location": f"/{term}/"}]}
        r = self.call("member", "POST", "/-/", doc)
        assert r.status_code == 200, r.text
        return USER_SCHEME + term, f"/{term}/"

    def members(self, who: str, location: str) -> int:
        r = self.call(who, "GET", location)
        assert r.status_code == 200, r.text
        return len(r.json.get("resources", [])) + len(r.json.get("links", []))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("matrix")
    settings = Settings.from_mapping(
        {"database_url": f"sqlite:///{tmp}/matrix.db", "auth": "basic,token", "job_wait": 10}
    )
    app, service = build(settings, upgrade=True)
    tokens = {}
    with service.store.begin() as tx:
        ids = IdentityTx(tx)
        for project in ("alpha", "beta"):
            ids.create_project(project)
        for name, project, role in (
            ("reader", "alpha", "reader"),
            ("member", "alpha", "member"),
            ("other", "beta", "member"),
            ("admin", None, "admin"),
        ):
            ids.create_user(name, password_hash=hash_password(f"{name}-password"))
            ids.grant(name, project, role)
            tokens[name] = ids.create_token(name)[1]
    yield Cloud(testing.TestClient(app), service, tokens)
    service.runner.stop()
    service.store.close()
    service.backend.close()


# Each case: (name, prepare(cloud) -> dict, request(cloud, prepared) -> (method, path, body,
# headers), expected status by who, check(cloud, prepared, who, response) for what changed).


def _entity(c: Cloud) -> dict:
    path = c.create("compute", {"occi.compute.cores": 1})
    return {"path": path, "version": c.version(path)}


def _unchanged(c: Cloud, p: dict, who: str, r) -> None:
    """A refused write left the entity as it was."""
    if r.status_code >= 400:
        assert c.version(p["path"]) == p["version"], f"{who}: {r.status} changed {p['path']}"


def _gone_unless_refused(c: Cloud, p: dict, who: str, r) -> None:
    if r.status_code >= 400:
        _unchanged(c, p, who, r)
    else:
        assert c.version(p["path"]) is None


def _mixin(c: Cloud) -> dict:
    mixin, location = c.mixin()
    path = c.create("compute", mixins=[mixin])
    return {"mixin": mixin, "location": location, "path": path, "version": c.version(path)}


READ = {"anonymous": 401, "reader": 200, "other": 404, "member": 200, "admin": 200}
WRITE = {"anonymous": 401, "reader": 403, "other": 404, "member": 200, "admin": 200}
CREATE = {"anonymous": 401, "reader": 403, "other": 201, "member": 201, "admin": 201}
OPEN_READ = {"anonymous": 401, "reader": 200, "other": 200, "member": 200, "admin": 200}
OPEN_WRITE = {"anonymous": 401, "reader": 403, "other": 200, "member": 200, "admin": 200}

CASES = [
    ("GET query interface", None, lambda c, p: ("GET", "/-/", None, None), OPEN_READ, None),
    (
        "GET well-known query interface",
        None,
        lambda c, p: ("GET", "/.well-known/org/ogf/occi/-/", None, None),
        OPEN_READ,
        None,
    ),
    (
        "GET kind collection",
        _entity,
        lambda c, p: ("GET", "/compute/", None, None),
        OPEN_READ,
        None,
    ),
    ("GET entity", _entity, lambda c, p: ("GET", p["path"], None, None), READ, None),
    ("HEAD entity", _entity, lambda c, p: ("HEAD", p["path"], None, None), READ, None),
    ("GET mixin collection", _mixin, lambda c, p: ("GET", p["location"], None, None), READ, None),
    (
        "POST define mixin",
        None,
        lambda c, p: (
            "POST",
            "/-/",
            {"mixins": [{"scheme": USER_SCHEME, "term": "d" + uuid.uuid4().hex[:8]}]},
            None,
        ),
        OPEN_WRITE,
        None,
    ),
    (
        "DELETE user mixin",
        _mixin,
        lambda c, p: (
            "DELETE",
            "/-/",
            {"mixins": [{"scheme": USER_SCHEME, "term": p["mixin"].split("#")[1]}]},
            None,
        ),
        WRITE,
        None,
    ),
    (
        "POST create",
        None,
        lambda c, p: ("POST", "/compute/", {"kind": INFRA + "compute"}, None),
        CREATE,
        None,
    ),
    (
        "PUT create",
        None,
        lambda c, p: ("PUT", f"/compute/{uuid.uuid4()}", {"kind": INFRA + "compute"}, None),
        CREATE,
        None,
    ),
    (
        "PUT replace",
        _entity,
        lambda c, p: (
            "PUT",
            p["path"],
            {"kind": INFRA + "compute", "attributes": {"occi.compute.cores": 2}},
            None,
        ),
        WRITE,
        _unchanged,
    ),
    (
        "POST partial update",
        _entity,
        lambda c, p: (
            "POST",
            p["path"],
            {"kind": INFRA + "compute", "attributes": {"occi.core.title": "changed"}},
            None,
        ),
        WRITE,
        _unchanged,
    ),
    (
        "POST action",
        _entity,
        lambda c, p: ("POST", p["path"] + "?action=start", {"action": ACTION + "start"}, None),
        WRITE,
        _unchanged,
    ),
    ("DELETE entity", _entity, lambda c, p: ("DELETE", p["path"], None, None), WRITE, None),
    (
        "POST associate mixin",
        _mixin,
        lambda c, p: (
            "POST",
            p["location"],
            {"locations": [c.create("compute")]},
            None,
        ),
        WRITE,
        None,
    ),
    (
        "DELETE dissociate mixin",
        _mixin,
        lambda c, p: ("DELETE", p["location"], {"locations": [p["path"]]}, None),
        WRITE,
        _unchanged,
    ),
    (
        "PUT replace mixin collection",
        _mixin,
        lambda c, p: ("PUT", p["location"], {"locations": []}, None),
        WRITE,
        _unchanged,
    ),
    (
        "POST create link",
        None,
        lambda c, p: (
            "POST",
            "/link/storagelink/",
            {
                "kind": INFRA + "storagelink",
                "source": {"location": c.create("compute")},
                "target": {"location": c.create("storage", {"occi.storage.size": 1})},
            },
            None,
        ),
        # the ends are alpha's: to another project's member they are not there, the same 400
        # as for a link to a missing resource
        {"anonymous": 401, "reader": 403, "other": 400, "member": 201, "admin": 201},
        None,
    ),
]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(
    "name, prepare, request_of, expected, check", CASES, ids=[c[0] for c in CASES]
)
def test_route_as(cloud, who, name, prepare, request_of, expected, check):
    prepared = prepare(cloud) if prepare else {}
    method, path, body, headers = request_of(cloud, prepared)
    r = cloud.call(who, method, path, body, headers)
    want = expected[who]
    # a delete, an update or an association may answer 200 or 204; a refusal is exact
    ok = {want} if want >= 400 or want == 201 else {200, 201, 204}
    assert r.status_code in ok, f"{name} as {who}: {r.status} {r.text[:300]}"
    if check is not None:
        check(cloud, prepared, who, r)
    elif want >= 400 and "path" in prepared and method != "GET" and method != "HEAD":
        _unchanged(cloud, prepared, who, r)


def test_collection_delete_and_action_stay_in_the_project(cloud):
    mine = cloud.create("compute")
    r = cloud.call("other", "DELETE", "/compute/")
    assert r.status_code in (200, 204), r.text
    assert cloud.version(mine) is not None
    r = cloud.call("other", "POST", "/compute/?action=stop", {"action": ACTION + "stop"})
    assert r.status_code in (200, 204), r.text
    assert cloud.call("reader", "DELETE", "/compute/").status_code == 403
    assert cloud.call("anonymous", "DELETE", "/compute/").status_code == 401
    assert cloud.version(mine) is not None


def test_listings_hold_only_the_project(cloud):
    mine = cloud.create("compute")
    r = cloud.call("other", "GET", "/compute/")
    assert mine not in r.text
    r = cloud.call("member", "GET", "/compute/")
    assert mine in r.text
    r = cloud.call("other", "GET", "/", headers={"Accept": "text/uri-list"})
    assert mine not in r.text


def test_basic_credentials_work_like_tokens(cloud):
    good = base64.b64encode(b"member:member-password").decode()
    r = cloud.client.simulate_get("/-/", headers={"Authorization": f"Basic {good}"})
    assert r.status_code == 200
    bad = base64.b64encode(b"member:wrong").decode()
    r = cloud.client.simulate_get("/-/", headers={"Authorization": f"Basic {bad}"})
    assert r.status_code == 401
    assert r.headers.get("www-authenticate")

"""Per-project quotas as a user meets them: creates, resizes and template associations past a
limit are refused with 403 `quota_exceeded` and a message naming the quota, its limit, the use
and the request's need, and nothing is stored; -1 never refuses; deleting frees the quota; a
project's own limit wins over the setting. Through the real app (auth none: every request is a
member of project `default`), and racing over real HTTP: one server on SQLite, two on one
PostgreSQL database."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from falcon import testing

from occi.api.wsgi import build
from occi.identity.store import IdentityTx
from occi.settings import Settings
from tests.api.conftest import INFRA, JSON, Api
from tests.live import LiveServer
from tests.test_cli import env_for

CRTP = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"
TEXT_KIND = f'compute; scheme="{INFRA}"; class="kind"'


def make_api(url: str, **settings: object):
    app, service = build(
        Settings.from_mapping({"database_url": url, "auth": "none", **settings}), upgrade=True
    )
    return Api(testing.TestClient(app), service)


@pytest.fixture
def made(tmp_path):
    """The app on a new SQLite database (`url=` another), with the settings given."""
    apis: list[Api] = []

    def make(url: str | None = None, **settings: object) -> Api:
        apis.append(make_api(url or f"sqlite:///{tmp_path}/q.db", **settings))
        return apis[-1]

    yield make
    for api in apis:
        if api.service.runner is not None:
            api.service.runner.stop()
        api.service.store.close()
        api.service.backend.close()


def set_quota(api: Api, resource: str, limit: int, project: str = "default") -> None:
    with api.service.store.begin() as tx:
        IdentityTx(tx).set_quota(project, resource, limit)


def post(api: Api, kind: str, attributes=None, mixins=()):
    doc = {"kind": INFRA + kind, "attributes": attributes or {}, "mixins": list(mixins)}
    return api.post(f"/{kind}/", doc)


def refused(r, message: str) -> None:
    assert r.status_code == 403, r.text
    assert r.json["error"]["error_code"] == "quota_exceeded"
    assert r.json["error"]["message"] == message
    assert r.headers["x-occi-error-code"] == "quota_exceeded"


def count(api: Api, kind: str) -> int:
    return api.count(f"/{kind}/")


# (quota, kind, attributes of each allowed create, attributes of the refused one, message)
CASES = [
    ("instances", 2, "compute", [{}, {}], {}, "instances limit 2, in use 2, this request needs 1"),
    (
        "cores",
        3,
        "compute",
        [{"occi.compute.cores": 2}],
        {"occi.compute.cores": 2},
        "cores limit 3, in use 2, this request needs 2",
    ),
    (
        "memory_gb",
        4,
        "compute",
        [{"occi.compute.memory": 2.5}, {"occi.compute.memory": 1.0}],
        {"occi.compute.memory": 0.75},
        "memory_gb limit 4, in use 3.5, this request needs 0.75",
    ),
    (
        "volumes",
        1,
        "storage",
        [{"occi.storage.size": 1.0}],
        {"occi.storage.size": 1.0},
        "volumes limit 1, in use 1, this request needs 1",
    ),
    (
        "storage_gb",
        10,
        "storage",
        [{"occi.storage.size": 8.0}],
        {"occi.storage.size": 5.0},
        "storage_gb limit 10, in use 8, this request needs 5",
    ),
    ("networks", 1, "network", [{}], {}, "networks limit 1, in use 1, this request needs 1"),
]


@pytest.mark.parametrize(
    "quota,limit,kind,allowed,too_much,message", CASES, ids=[c[0] for c in CASES]
)
def test_each_quota_refuses_the_create_past_its_limit(
    made, quota, limit, kind, allowed, too_much, message
):
    api = made()
    set_quota(api, quota, limit)
    for attributes in allowed:
        r = post(api, kind, attributes)
        assert r.status_code == 201, r.text
    r = post(api, kind, too_much)
    refused(r, f"quota exceeded in project default: {message} more")
    assert count(api, kind) == len(allowed)  # nothing stored


def test_sums_of_sizes_on_every_database(made, db_url):
    """The usage is summed in SQL from the stored JSON attributes (json_extract on SQLite,
    ->> on PostgreSQL), fractions included."""
    api = made(db_url, quota_cores=4, quota_memory_gb=3, quota_storage_gb=2)
    assert (
        post(api, "compute", {"occi.compute.cores": 3, "occi.compute.memory": 2.5}).status_code
        == 201
    )
    refused(
        post(api, "compute", {"occi.compute.cores": 2, "occi.compute.memory": 0.25}),
        "quota exceeded in project default: cores limit 4, in use 3, this request needs 2 more",
    )
    refused(
        post(api, "compute", {"occi.compute.cores": 1, "occi.compute.memory": 0.75}),
        "quota exceeded in project default: memory_gb limit 3, in use 2.5, this request needs 0.75 more",
    )
    assert (
        post(api, "compute", {"occi.compute.cores": 1, "occi.compute.memory": 0.5}).status_code
        == 201
    )
    assert post(api, "storage", {"occi.storage.size": 1.5}).status_code == 201
    refused(
        post(api, "storage", {"occi.storage.size": 0.75}),
        "quota exceeded in project default: storage_gb limit 2, in use 1.5, this request needs 0.75 more",
    )


def test_unlimited_quotas_cost_one_read_and_no_lock(made):
    """With every limit -1, a create reads the project's quota rows and nothing more: no lock,
    no usage sum; with a limit, one lock (none on SQLite, whose writes are serialised) and one
    sum."""
    api = made()
    seen: list[str] = []
    engine = api.service.store.engine
    listener = lambda *args: seen.append(" ".join(args[2].split()))  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        assert post(api, "compute").status_code == 201
        assert [s for s in seen if "quotas" in s] == [s for s in seen if "FROM quotas" in s]
        assert len([s for s in seen if "FROM quotas" in s]) == 1
        assert not [s for s in seen if "FROM entities" in s and "sum(" in s]
        set_quota(api, "instances", 5)
        seen.clear()
        assert post(api, "compute").status_code == 201
        assert len([s for s in seen if "FROM entities" in s and "sum(" in s]) == 1
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


def test_the_refusal_in_text_plain(made):
    api = made(quota_instances=0)
    r = api.post(
        "/compute/",
        body="",
        accept="text/plain",
        ctype="text/plain",
        headers={"Category": TEXT_KIND},
    )
    assert r.status_code == 403
    assert r.headers["x-occi-error-code"] == "quota_exceeded"
    assert (
        "quota exceeded in project default: instances limit 0, in use 0, "
        "this request needs 1 more" in r.text
    )
    assert count(api, "compute") == 0


def test_a_compute_without_sizes_counts_the_defaults_and_templates_their_sizes(made):
    api = made(quota_cores=4, quota_memory_gb=100)
    assert post(api, "compute").status_code == 201  # the default: 1 core, 1 GB
    r = post(api, "compute", {"occi.compute.cores": 1}, mixins=[CRTP + "large"])
    refused(
        r, "quota exceeded in project default: cores limit 4, in use 1, this request needs 4 more"
    )
    set_quota(api, "memory_gb", 4)
    r = post(api, "compute", mixins=[CRTP + "mem_small"])  # 1 core, 4 GB
    refused(
        r,
        "quota exceeded in project default: memory_gb limit 4, in use 1, this request needs 4 more",
    )
    r = post(api, "compute", {"occi.compute.cores": 2, "occi.compute.memory": 3.0})
    assert r.status_code == 201, r.text


def test_several_entities_in_one_request_count_together(made):
    api = made(quota_instances=2)
    doc = {
        "resources": [
            {"kind": INFRA + "compute", "attributes": {}},
            {"kind": INFRA + "compute", "attributes": {}},
            {"kind": INFRA + "compute", "attributes": {}},
        ]
    }
    r = api.post("/compute/", doc)
    refused(
        r,
        "quota exceeded in project default: instances limit 2, in use 0, this request needs 3 more",
    )
    assert count(api, "compute") == 0
    doc["resources"].pop()
    assert api.post("/compute/", doc).status_code in (200, 201)
    assert count(api, "compute") == 2


def test_unlimited_never_refuses(made):
    api = made(quota_instances=1, quota_cores=1)
    set_quota(api, "instances", -1)
    set_quota(api, "cores", -1)
    for _ in range(4):
        assert post(api, "compute", {"occi.compute.cores": 16}).status_code == 201
    assert count(api, "compute") == 4


def test_the_project_limit_wins_over_the_setting(made):
    api = made(quota_volumes=1)
    set_quota(api, "volumes", 3)
    for _ in range(3):
        assert post(api, "storage", {"occi.storage.size": 1.0}).status_code == 201
    r = post(api, "storage", {"occi.storage.size": 1.0})
    refused(
        r, "quota exceeded in project default: volumes limit 3, in use 3, this request needs 1 more"
    )
    set_quota(api, "volumes", 0)  # lowering below the use refuses more, keeps what is there
    assert count(api, "storage") == 3


def test_put_create_is_counted(made):
    api = made(quota_networks=1)
    doc = {"kind": INFRA + "network", "attributes": {}}
    assert api.put("/network/n1", doc).status_code == 201
    refused(
        api.put("/network/n2", doc),
        "quota exceeded in project default: networks limit 1, in use 1, this request needs 1 more",
    )
    assert api.get("/network/n2").status_code == 404
    assert api.put("/network/n1", {**doc, "title": "again"}).status_code == 200  # a replace


def test_resizes_past_a_limit_are_refused_and_shrinking_is_not(made):
    api = made(quota_cores=4, quota_storage_gb=10)
    path = api.path_of(post(api, "compute", {"occi.compute.cores": 2}))
    r = api.post(path, {"attributes": {"occi.compute.cores": 5}})
    refused(
        r, "quota exceeded in project default: cores limit 4, in use 2, this request needs 3 more"
    )
    assert api.get(path).json["attributes"]["occi.compute.cores"] == 2
    assert api.post(path, {"attributes": {"occi.compute.cores": 4}}).status_code == 200
    # a full replacement (PUT) raising the cores is a resize too
    doc = {"kind": INFRA + "compute", "attributes": {"occi.compute.cores": 6}}
    refused(
        api.put(path, doc),
        "quota exceeded in project default: cores limit 4, in use 4, this request needs 2 more",
    )
    # so is associating a resource template that raises them (large: 4 cores) past the limit
    assert api.post(path, {"attributes": {"occi.compute.cores": 1}}).status_code == 200
    other = api.path_of(post(api, "compute", {"occi.compute.cores": 1}))
    r = api.post("/mixin/resource_tpl/large/", {"locations": [path, other]})
    refused(
        r, "quota exceeded in project default: cores limit 4, in use 2, this request needs 6 more"
    )
    assert api.get(path).json["attributes"]["occi.compute.cores"] == 1
    # with every size lowered, an over-limit project can still shrink
    set_quota(api, "cores", 1)
    assert api.post(path, {"attributes": {"occi.compute.cores": 1}}).status_code == 200
    # a storage update raising the size
    vol = api.path_of(post(api, "storage", {"occi.storage.size": 6.0}))
    r = api.post(vol, {"attributes": {"occi.storage.size": 12.0}})
    refused(
        r,
        "quota exceeded in project default: storage_gb limit 10, in use 6, this request needs 6 more",
    )
    assert api.get(vol).json["attributes"]["occi.storage.size"] == 6.0
    assert api.post(vol, {"attributes": {"occi.storage.size": 10.0}}).status_code == 200


def test_deleting_frees_the_quota(made):
    api = made(quota_instances=1)
    path = api.path_of(post(api, "compute"))
    assert post(api, "compute").status_code == 403
    assert api.delete(path).status_code in (200, 204)
    assert api.get(path).status_code == 404
    assert post(api, "compute").status_code == 201


# ---------------------------------------------------------------- racing over real HTTP
def admin(tmp_path: Path, url: str, *args: str) -> str:
    p = subprocess.run(
        [sys.executable, "-m", "occi.cli", *args],
        cwd=tmp_path,
        env=env_for(tmp_path, OCCI_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def race(urls: list[str], n: int = 20) -> list[requests.Response]:
    """`n` creates of a compute, spread over the servers, sent at once (each thread opens its
    connection first, then all wait for the last before sending)."""
    body = json.dumps({"kind": INFRA + "compute", "attributes": {}})
    headers = {"Content-Type": JSON, "Accept": JSON}
    start = threading.Barrier(n)

    def create(i: int) -> requests.Response:
        with requests.Session() as s:
            url = urls[i % len(urls)]
            s.get(url + "/-/", timeout=60)  # the connection is open and kept
            start.wait(timeout=60)
            return s.post(url + "/compute/", data=body, headers=headers, timeout=120)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(create, range(n)))


def race_against_five(tmp_path: Path, url: str, servers: int) -> None:
    admin(tmp_path, url, "migrate")
    admin(tmp_path, url, "quotas", "set", "default", "instances", "5")
    started: list[LiveServer] = []
    try:
        for _ in range(servers):
            started.append(
                LiveServer(tmp_path, database_url=url, threads=8, env={"OCCI_AUTH": "none"})
            )
        answers = race([s.url for s in started])
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [201] * 5 + [403] * 15, [
            r.text for r in answers if r.status_code not in (201, 403)
        ]
        for r in answers:
            if r.status_code == 403:
                assert r.json()["error"]["error_code"] == "quota_exceeded"
        listed = requests.get(started[0].url + "/compute/", headers={"Accept": JSON}, timeout=30)
        assert len(listed.json()["resources"]) == 5
    finally:
        for s in started:
            s.stop()


def test_twenty_racing_creates_against_five_leave_five_sqlite(tmp_path):
    race_against_five(tmp_path, f"sqlite:///{tmp_path}/race.db", servers=1)


@pytest.mark.postgres
def test_twenty_racing_creates_on_two_servers_leave_five_postgresql(tmp_path, pg_url):
    race_against_five(tmp_path, pg_url, servers=2)

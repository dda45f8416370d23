"""GET /metrics: requests by bounded route, latency and job histograms, jobs and entities read
from SQL, database errors; through the app in-process, and through a real gunicorn with two
workers in prometheus_client's multi-process mode."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from falcon import testing
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from occi.api.wsgi import build
from occi.settings import Settings
from tests.api.conftest import INFRA, JSON
from tests.live import LiveServer

ROUTES = {
    "query_interface",
    "collection",
    "mixin_collection",
    "entity",
    "healthz",
    "metrics",
    "admin",
    "other",
}


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition: (name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(api) -> dict[tuple[str, frozenset], float]:
    r = api.get("/metrics", accept=None)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def test_requests_are_counted_by_bounded_route(api):
    before = scrape(api)
    entity = api.path_of(api.create("compute"))
    assert api.get(entity).status_code == 200
    assert api.get(entity).status_code == 200
    assert api.get("/compute/no-such-id").status_code == 404
    assert api.get("/-/").status_code == 200
    assert api.get("/healthz", accept=None).status_code == 200
    r = api.post(
        "/-/",
        body="",
        ctype="text/plain",
        headers={"Category": 'watched; scheme="http://example.com/occi#"; class="mixin"'},
    )
    assert r.status_code == 200, r.text
    assert api.get("/mixin/user/watched/").status_code == 200
    after = scrape(api)

    def delta(route, method, status):
        labels = {"route": route, "method": method, "status": status}
        return sample(after, "occi_http_requests_total", **labels) - sample(
            before, "occi_http_requests_total", **labels
        )

    assert delta("entity", "GET", "200") == 2
    assert delta("entity", "GET", "404") == 1
    assert delta("collection", "POST", "201") == 1
    assert delta("query_interface", "GET", "200") == 1
    assert delta("query_interface", "POST", "200") == 1
    assert delta("healthz", "GET", "200") == 1
    assert delta("mixin_collection", "GET", "200") == 1
    assert delta("metrics", "GET", "200") == 1  # the first scrape, seen by the second
    # a bounded label set: routes are names, never paths or ids
    entity_id = entity.rsplit("/", 1)[1]
    for name, labels in after:
        values = dict(labels)
        assert all(entity_id not in v and "/" not in v for k, v in values.items() if k != "kind")
        if name.startswith("occi_http_"):
            assert values["route"] in ROUTES
    # a latency histogram per route and method
    hist = "occi_http_request_duration_seconds"
    get_entity = {"route": "entity", "method": "GET"}
    n = sample(after, hist + "_count", **get_entity)
    assert n - sample(before, hist + "_count", **get_entity) == 3
    assert sample(after, hist + "_bucket", le="+Inf", **get_entity) == n


def test_jobs_and_entities_match_what_was_created(api):
    before = scrape(api)
    started = api.path_of(api.create("compute"))
    api.create("compute")
    api.create("storage", {"occi.storage.size": 2})
    assert api.post(started, {}, params={"action": "start"}).status_code == 200
    after = scrape(api)

    assert sample(after, "occi_database_up") == 1
    states = Counter()
    for kind in ("compute", "storage"):
        for e in api.get(f"/{kind}/").json["resources"]:
            states[(e["kind"], e["attributes"].get(f"occi.{kind}.state"))] += 1
    assert states[(INFRA + "compute", "active")] == 1
    gauges = {
        (dict(labels)["kind"], dict(labels)["state"]): v
        for (name, labels), v in after.items()
        if name == "occi_entities"
    }
    assert gauges == {(k, s or "none"): n for (k, s), n in states.items()}
    # every job finished: three creates and a start, nothing left
    assert sample(after, "occi_jobs", status="done") == 4
    for status in ("pending", "running", "failed"):
        assert sample(after, "occi_jobs", status=status) == 0
    # and each one's run time was observed, by operation
    runs = "occi_job_duration_seconds_count"
    assert sample(after, runs, operation="create") - sample(before, runs, operation="create") == 3
    assert sample(after, runs, operation="action") - sample(before, runs, operation="action") == 1


def test_database_errors_are_counted(tmp_path):
    """A database the server cannot use (here: no schema) answers 503, and is counted."""
    settings = Settings.from_mapping(
        {"database_url": f"sqlite:///{tmp_path}/empty.db", "auth": "none"}
    )
    app, service = build(settings, run_jobs=False)
    client = testing.TestClient(app)
    try:
        before = parse(client.simulate_get("/metrics").text)
        r = client.simulate_get("/compute/x", headers={"Accept": JSON})
        assert r.status_code == 503
        after = parse(client.simulate_get("/metrics").text)
    finally:
        service.store.close()
    errors = "occi_database_errors_total"
    assert sample(after, errors) - sample(before, errors) >= 2  # the GET, the first scrape
    assert sample(after, "occi_database_up") == 0


def test_metrics_path_is_reserved_and_read_only(api):
    r = api.post(
        "/-/",
        body="",
        ctype="text/plain",
        headers={
            "Category": 'm; scheme="http://example.com/occi#"; class="mixin"; location="/metrics/"'
        },
    )
    assert r.status_code == 409, r.text  # the server's own path, like a location in use
    assert "reserved" in r.text
    r = api.post("/metrics", {})
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
    r = api.request("HEAD", "/metrics", accept=None)
    assert r.status_code == 200 and r.content == b""


def test_store_counts_entities_by_kind_and_state(db_url):
    """One GROUP BY on SQLite and PostgreSQL: the state is occi.<kind term>.state, not any
    other attribute that ends in .state; entities without one count as None."""
    from occi.model import Link, Resource
    from occi.store import make_store

    store = make_store(db_url)
    store.upgrade()
    compute, storage, link = INFRA + "compute", INFRA + "storage", INFRA + "storagelink"
    try:
        with store.begin() as tx:
            for i, state in enumerate(["active", "active", "inactive"]):
                attrs = {"occi.compute.state": state, "occi.storage.state": "online"}
                tx.insert(Resource(compute, f"c{i}", location=f"/compute/c{i}", attributes=attrs))
            tx.insert(Resource(compute, "bare", location="/compute/bare"))
            tx.insert(
                Resource(
                    storage,
                    "s0",
                    location="/storage/s0",
                    attributes={"occi.storage.state": "online"},
                )
            )
            tx.insert(
                Link(
                    link,
                    "l0",
                    location="/link/l0",
                    source="/compute/c0",
                    target="/storage/s0",
                    attributes={"occi.storagelink.state": "active"},
                )
            )
        with store.begin(readonly=True) as tx:
            counts = tx.count_by_kind_state()
    finally:
        store.close()
    assert counts == {
        (compute, "active"): 2,
        (compute, "inactive"): 1,
        (compute, None): 1,
        (storage, "online"): 1,
        (link, "active"): 1,
    }


# ------------------------------------------------------------------ real gunicorn


class SyncServer(LiveServer):
    """`occi-server` under gunicorn with `workers` sync workers (one request at a time each),
    its output in a file the tests read; `env` verbatim."""

    def __init__(self, tmp: Path, workers: int = 2, **env: str):
        super().__init__(
            tmp, workers=workers, threads=1, env=env, health="/healthz", log_level="INFO"
        )


def per_worker(metrics_dir: Path, name: str, **labels) -> dict[int, float]:
    """What each worker's own metric files hold for one sample, by pid."""
    out: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for family in MultiProcessCollector.merge([str(path)], accumulate=True):
            for s in family.samples:
                if s.name == name and s.labels == labels:
                    out[pid] = out.get(pid, 0) + s.value
    return out


@pytest.mark.server
def test_two_workers_counted_in_one_scrape(tmp_path):
    metrics_dir = tmp_path / "metrics"
    # a slow simulator: while one sync worker runs a create, the other must take the next
    srv = SyncServer(tmp_path, OCCI_METRICS_DIR=str(metrics_dir), OCCI_SIMULATOR_DELAY="0.3")
    try:
        h = {"Content-Type": JSON, "Accept": JSON}

        def create(_):
            r = requests.post(srv.url + "/compute/", headers=h, json={"kind": INFRA + "compute"})
            return r.status_code

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(create, range(6))) == [201] * 6
        labels = {"route": "collection", "method": "POST", "status": "201"}
        by_worker = per_worker(metrics_dir, "occi_http_requests_total", **labels)
        assert len(by_worker) == 2 and sum(by_worker.values()) == 6, by_worker

        samples = parse(requests.get(srv.url + "/metrics").text)
        assert sample(samples, "occi_http_requests_total", **labels) == 6
        assert sample(samples, "occi_entities", kind=INFRA + "compute", state="inactive") == 6
        assert sample(samples, "occi_job_duration_seconds_count", operation="create") == 6

        # a worker killed outright: gunicorn replaces it, and its counts still add up
        victim = max(by_worker)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while victim in _worker_pids(srv.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        srv.wait_up()
        samples = parse(requests.get(srv.url + "/metrics").text)
        assert sample(samples, "occi_http_requests_total", **labels) == 6
        assert srv.proc.poll() is None
    finally:
        srv.stop()
    assert metrics_dir.is_dir()  # a named directory is kept


def _worker_pids(master: int) -> set[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True
    ).stdout
    return {int(p) for p in out.split()}


@pytest.mark.server
def test_private_metrics_directory_is_removed_at_exit(tmp_path):
    """Without metrics_dir, the master makes a private temporary directory, and removes it."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    srv = SyncServer(tmp_path, workers=1, TMPDIR=str(tmp))
    try:
        assert requests.get(srv.url + "/metrics").status_code == 200
        dirs = list(tmp.glob("occi-metrics-*"))
        assert len(dirs) == 1 and list(dirs[0].glob("*.db"))
    finally:
        srv.stop()
    assert not dirs[0].exists()

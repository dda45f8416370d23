"""The bench's write baseline (bench/write_baseline.py) stores the rows the server stores: an
entity it creates reads back through the server like one the server made, and an action it
replays leaves the entity and its job as the server's restart does."""

from __future__ import annotations

import json

import sqlalchemy as sa
from falcon import testing

from bench.write_baseline import Writes, record_templates
from occi.api.wsgi import build
from occi.settings import Settings
from occi.store.sql import entities, jobs

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
JSON = {"Content-Type": "application/occi+json", "Accept": "application/occi+json"}


def _path(location: str) -> str:
    return "/" + location.split("://", 1)[-1].split("/", 1)[1]


def test_write_baseline_rows_read_back_like_the_servers(db_url):
    url = db_url
    settings = Settings.from_mapping({"database_url": url, "auth": "none", "log_level": "WARNING"})
    app, service = build(settings, upgrade=True, run_jobs=False)
    client = testing.TestClient(app)
    try:
        doc = {
            "kind": INFRA + "compute",
            "mixins": ["http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#small"],
            "attributes": {"occi.compute.hostname": "bench"},
        }
        made = _path(
            client.simulate_post("/compute/", body=json.dumps(doc), headers=JSON).headers[
                "location"
            ]
        )
        created = record_templates(url, made, made)["create"]  # as the create left it
        client.simulate_post(
            made,
            query_string="action=start",
            body=json.dumps({"action": ACTION + "start"}),
            headers=JSON,
        )
        r = client.simulate_post(
            made,
            query_string="action=restart",
            body=json.dumps({"action": ACTION + "restart"}),
            headers=JSON,
        )
        assert r.status_code == 200, r.text
        templates = {"create": created, "action": record_templates(url, None, made)["action"]}
        writes = Writes(url, templates)
        try:
            copied = writes.do_create()
            by_server = client.simulate_get(made, headers=JSON).json
            by_baseline = client.simulate_get(copied, headers=JSON)
            assert by_baseline.status_code == 200, by_baseline.text
            copy = by_baseline.json
            assert copy["id"] != by_server["id"]
            assert copy["mixins"] == by_server["mixins"]
            assert copy["attributes"]["occi.compute.hostname"] == "bench"
            assert copy["attributes"]["occi.compute.state"] == "inactive"

            entity_id = made.rsplit("/", 1)[1]
            with writes.engine.connect() as conn:
                before = conn.execute(
                    sa.select(entities.c.version).where(entities.c.id == entity_id)
                ).scalar_one()
                jobs_before = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(jobs)
                    .where(jobs.c.entity_id == entity_id)
                ).scalar_one()
            writes.do_action(entity_id)
            with writes.engine.connect() as conn:
                after = conn.execute(
                    sa.select(entities.c.version).where(entities.c.id == entity_id)
                ).scalar_one()
                newest = conn.execute(
                    sa.select(jobs.c.operation, jobs.c.status, sa.func.count().over())
                    .where(jobs.c.entity_id == entity_id)
                    .order_by(jobs.c.seq.desc())
                    .limit(1)
                ).one()
            assert after == before + 1
            assert (newest[0], newest[1], newest[2]) == ("action", "done", jobs_before + 1)
            state = client.simulate_get(made, headers=JSON).json["attributes"]
            assert state["occi.compute.state"] == "active"
            # the collection lists both, so the server's filters find the baseline's rows
            listed = client.simulate_get("/compute/", headers={"Accept": "text/uri-list"}).text
            assert copied in listed and made in listed
        finally:
            writes.engine.dispose()
    finally:
        service.store.close()
        service.backend.close()


def test_bench_reads_back_the_settings_the_server_runs_with(tmp_path):
    """check_settings names a setting the server runs with that the bench does not claim
    (here OCCI_JOB_WAIT=0 in its environment), and passes the claimed ones."""
    import os
    import sys
    from pathlib import Path

    import pytest

    from bench.run import Served, check_settings

    root = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
    env.update(OCCI_DATABASE_URL=f"sqlite:///{tmp_path}/occi.db", PYTHONPATH=root)
    argv = [sys.executable, "-m", "occi.cli", "--workers", "1"]
    for extra, wrong in (({}, None), ({"OCCI_JOB_WAIT": "0"}, "job_wait")):
        served = Served("server", argv, dict(env, **extra), tmp_path, "/-/")
        try:
            args = [*argv[3:], "--bind", served.address]
            if wrong is None:
                shown = check_settings(served, args, dict(env, **extra))
                assert shown["job_wait"] == 10.0 and shown["workers"] == 1
            else:
                with pytest.raises(RuntimeError, match=wrong):
                    check_settings(served, args, dict(env, **extra))
        finally:
            served.stop()

"""X-Request-Id: every response carries one, a sane incoming one is kept, and every log line
written while serving the request names it (in-process, and in a real gunicorn's output)."""

from __future__ import annotations

import logging
import re
import time

import pytest
import requests

from tests.api.conftest import INFRA, JSON
from tests.api.test_metrics import SyncServer

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_every_response_carries_a_request_id(api):
    ids = set()
    for r in (
        api.get("/-/"),
        api.get("/compute/missing"),  # an OCCI error
        api.post("/metrics", {}),  # one of falcon's own
        api.get("/healthz", accept=None),
        api.request("OPTIONS", "/compute/"),
    ):
        rid = r.headers.get("x-request-id")
        assert rid and GENERATED.fullmatch(rid), (r.status_code, r.headers)
        ids.add(rid)
    assert len(ids) == 5  # one per request


@pytest.mark.parametrize("given", ["abc", "req-2024.05_x", "A" * 128])
def test_a_sane_incoming_id_is_kept(api, given):
    assert api.get("/-/", headers={"X-Request-Id": given}).headers["x-request-id"] == given


@pytest.mark.parametrize(
    "hostile", ["", "two words", "a" * 129, "id;rm -rf", "../../etc", "x\u00e9", "<script>"]
)
def test_a_hostile_incoming_id_is_replaced(api, hostile):
    rid = api.get("/-/", headers={"X-Request-Id": hostile}).headers["x-request-id"]
    assert rid != hostile and GENERATED.fullmatch(rid)


def test_log_records_of_a_request_carry_its_id(api, caplog):
    caplog.set_level(logging.DEBUG, logger="occi")
    r = api.post("/compute/", {"kind": INFRA + "compute"}, headers={"X-Request-Id": "create-1"})
    assert r.status_code == 201
    mine = [rec for rec in caplog.records if getattr(rec, "request_id", None) == "create-1"]
    # the job the request ran itself, and the request's own summary line
    assert any(rec.name == "occi.jobs.runner" and "create" in rec.getMessage() for rec in mine)
    assert any(rec.name == "occi.api.metrics" and "201" in rec.getMessage() for rec in mine)
    caplog.clear()
    # a listing is streamed after the handler returns: its summary still names the request
    r = api.get("/compute/", headers={"X-Request-Id": "list-1"})
    assert r.status_code == 200 and r.json["resources"]
    summary = [rec for rec in caplog.records if rec.name == "occi.api.metrics"]
    assert [rec.request_id for rec in summary] == ["list-1"]
    # outside requests: "-"
    logging.getLogger("occi.test").warning("between requests")
    assert caplog.records[-1].request_id == "-"


@pytest.mark.server
def test_request_id_in_the_live_server_log(tmp_path):
    srv = SyncServer(tmp_path, workers=2, OCCI_LOG_LEVEL="DEBUG")
    try:
        h = {"Content-Type": JSON, "Accept": JSON}
        r = requests.post(
            srv.url + "/compute/",
            headers={**h, "X-Request-Id": "live-req.42_x"},
            json={"kind": INFRA + "compute"},
        )
        assert r.status_code == 201 and r.headers["X-Request-Id"] == "live-req.42_x"
        r = requests.get(srv.url + "/-/", headers={"X-Request-Id": "evil id<script>"})
        replaced = r.headers["X-Request-Id"]
        assert GENERATED.fullmatch(replaced)
        # the access log is written after the answer: wait for both lines
        lines = _lines_naming(srv, replaced, at_least=2)
        lines += _lines_naming(srv, "live-req.42_x", at_least=3)
        output = srv.output()
    finally:
        srv.stop()
    mine = [ln for ln in lines if "live-req.42_x" in ln]
    # gunicorn's access line, the job run inline, and the request's summary
    assert any('"POST /compute/ HTTP/1.1" 201' in ln for ln in mine), output[-3000:]
    assert any("occi.jobs.runner [live-req.42_x]: running create" in ln for ln in mine), mine
    assert any("occi.api.metrics [live-req.42_x]: POST /compute/ -> 201" in ln for ln in mine)
    assert any('"GET /-/ HTTP/1.1" 200' in ln for ln in lines if replaced in ln)
    assert "evil" not in output


def _lines_naming(srv: SyncServer, rid: str, at_least: int = 1) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        found = [ln for ln in srv.output().splitlines() if rid in ln]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.server
def test_haproxy_example_sets_ids_and_keeps_metrics_inside(tmp_path):
    from tests.api.test_failover import HAProxy

    srv = SyncServer(tmp_path, workers=1)
    lb = HAProxy(tmp_path, [srv.port, srv.port])
    try:
        assert requests.get(lb.url + "/metrics").status_code == 403
        assert requests.get(srv.url + "/metrics").status_code == 200
        rid = requests.get(lb.url + "/-/").headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", rid)  # HAProxy's uuid
        given = requests.get(lb.url + "/-/", headers={"X-Request-Id": "client-7"})
        assert given.headers["X-Request-Id"] == "client-7"
    finally:
        lb.stop()
        srv.stop()

"""Every error answer carries a machine-readable code beside its message (the X-OCCI-Error-Code
header in every rendering, and `error_code` in a JSON error), and every error is rendered in the
media type the client negotiated: the service's, falcon's own, and a bug's (a 500 that shows
nothing of the bug)."""

from __future__ import annotations

import logging

import pytest
from falcon import testing

from occi.api.wsgi import build
from tests.api.conftest import INFRA, JSON

TEXT = "text/plain"
ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"


def _code(r) -> str:
    return r.headers["x-occi-error-code"]


def test_not_found_in_json_and_text(api):
    r = api.get("/compute/nothing-here")
    assert r.status_code == 404
    assert r.json["error"] == {
        "code": 404,
        "reason": "Not Found",
        "message": "nothing exists at /compute/nothing-here",
        "error_code": "not_found",
    }
    assert _code(r) == "not_found"
    r = api.get("/compute/nothing-here", accept=TEXT)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")
    assert _code(r) == "not_found" and "nothing exists" in r.text


def test_finer_codes_where_the_service_knows_more(api):
    path = api.path_of(api.create("compute"))
    # an immutable attribute
    r = api.post(path, {"attributes": {"occi.compute.state": "active"}})
    assert r.status_code == 403 and r.json["error"]["error_code"] == "immutable_attribute"
    # an action the state does not allow (suspend a stopped machine)
    r = api.post(path + "?action=suspend", {"action": ACTION + "suspend"})
    assert r.status_code == 409, r.text
    assert r.json["error"]["error_code"] == "state_conflict" == _code(r)
    # a stale ETag, in text
    tag = api.get(path).headers["etag"]
    assert api.post(path, {"attributes": {"occi.compute.hostname": "a"}}).status_code == 200
    r = api.delete(path, headers={"If-Match": tag}, accept=TEXT)
    assert r.status_code == 412 and _code(r) == "version_mismatch"
    assert "ETag" in r.text
    # a bad rendering
    r = api.post("/compute/", b"{not json", ctype=JSON)
    assert r.status_code == 400 and r.json["error"]["error_code"] == "unparsable"
    # the page size above the maximum (50 in these tests)
    r = api.get("/compute/", params={"number": "51"})
    assert r.status_code == 413 and _code(r) == "page_too_large"


def test_put_conditions_have_codes(api):
    doc = {"kind": INFRA + "compute"}
    assert api.put("/compute/once", doc, headers={"If-None-Match": "*"}).status_code == 201
    r = api.put("/compute/once", doc, headers={"If-None-Match": "*"})
    assert r.status_code == 412 and _code(r) == "already_there"
    r = api.put("/compute/absent", doc, headers={"If-Match": "*"})
    assert r.status_code == 412 and _code(r) == "not_there"


@pytest.mark.parametrize(
    ("accept", "ctype"),
    [(JSON, "application/occi+json"), (TEXT, "text/plain"), ("application/occi+xml", "xml")],
)
def test_falcon_own_errors_in_the_negotiated_type(api, accept, ctype):
    r = api.put("/metrics", {}, accept=accept)  # a route: falcon answers the 405
    assert r.status_code == 405 and ctype in r.headers["content-type"]
    assert _code(r) == "method_not_allowed" and "GET" in r.headers["allow"]
    if accept == JSON:
        assert r.json["error"]["code"] == 405
        assert r.json["error"]["error_code"] == "method_not_allowed"
    if accept == "application/occi+xml":
        assert 'errorCode="method_not_allowed"' in r.text


def test_a_bug_answers_500_in_the_negotiated_type_and_is_logged(settings, caplog):
    app, service = build(settings, upgrade=True, run_jobs=False)

    class Broken:
        def on_get(self, req, resp):
            raise RuntimeError("secret internals")

    app.add_route("/broken", Broken())
    client = testing.TestClient(app)
    try:
        with caplog.at_level(logging.ERROR, logger="occi.api.app"):
            r = client.simulate_get("/broken", headers={"Accept": JSON})
        assert r.status_code == 500
        assert r.json["error"]["error_code"] == "internal_error"
        assert "secret" not in r.text and "Traceback" not in r.text
        assert any("secret internals" in (rec.exc_text or "") for rec in caplog.records)
        r = client.simulate_get("/broken", headers={"Accept": TEXT})
        assert r.status_code == 500 and r.headers["content-type"].startswith("text/plain")
        assert "secret" not in r.text
    finally:
        if service.runner is not None:
            service.runner.stop()
        service.store.close()
        service.backend.close()

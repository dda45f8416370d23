"""Cross-site requests (occi.api.cors): writes from pages of other sites are refused before
anything changes; allowed origins get the CORS headers and their preflights answered."""

from __future__ import annotations

import pytest
from falcon import testing

from occi.api.wsgi import build
from occi.settings import Settings
from tests.api.conftest import INFRA, JSON, Api

OWN = "http://falconframework.org"  # the scheme and Host of falcon's test client
ALLOWED = "https://console.example.org"
EVIL = "https://evil.example"
COMPUTE = {"kind": INFRA + "compute", "attributes": {"occi.core.title": "c"}}
TEXT_COMPUTE = (
    'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"\n'
)


@pytest.fixture
def cors_api(tmp_path):
    settings = Settings.from_mapping(
        {"database_url": f"sqlite:///{tmp_path}/cors.db", "cors_origins": ALLOWED, "auth": "none"}
    )
    app, service = build(settings, upgrade=True)
    yield Api(testing.TestClient(app), service)
    if service.runner is not None:
        service.runner.stop()
    service.store.close()
    service.backend.close()


def _made(api: Api) -> int:
    return api.count("/compute/")


@pytest.mark.parametrize(
    "ctype, body",
    [
        ("text/plain", TEXT_COMPUTE),  # what a page's form or fetch sends without a preflight
        ("application/x-www-form-urlencoded", "occi.core.title=x"),
        ("text/occi", ""),
    ],
)
def test_post_from_another_site_is_refused_and_creates_nothing(cors_api, ctype, body):
    headers = {"Origin": EVIL, "Content-Type": ctype}
    if ctype == "text/occi":
        headers["Category"] = TEXT_COMPUTE.split(": ", 1)[1].strip()
    r = cors_api.post("/compute/", body, headers=headers, ctype=None)
    assert r.status_code == 403, r.text
    assert r.headers["X-OCCI-Error-Code"] == "origin_refused"
    assert r.json["error"]["error_code"] == "origin_refused"
    assert "cors_origins" in r.text
    assert "access-control-allow-origin" not in r.headers
    assert _made(cors_api) == 0


def test_refusal_is_in_the_clients_rendering(cors_api):
    r = cors_api.post(
        "/compute/", TEXT_COMPUTE, headers={"Origin": EVIL}, ctype="text/plain", accept="text/plain"
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/plain")
    assert "cors_origins" in r.text


def test_delete_and_put_from_another_site_change_nothing(cors_api):
    path = cors_api.path_of(cors_api.create("compute"))
    r = cors_api.delete(path, headers={"Origin": EVIL})
    assert r.status_code == 403
    r = cors_api.delete("/compute/", headers={"Origin": EVIL})
    assert r.status_code == 403
    r = cors_api.put("/compute/other", COMPUTE, headers={"Origin": "null"})
    assert r.status_code == 403
    assert cors_api.get(path).status_code == 200
    assert _made(cors_api) == 1


def test_cross_site_fetch_metadata_without_origin_is_refused(cors_api):
    r = cors_api.post("/compute/", COMPUTE, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert r.headers["X-OCCI-Error-Code"] == "origin_refused"
    assert _made(cors_api) == 0
    same = cors_api.post("/compute/", COMPUTE, headers={"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 201


def test_read_from_another_site_has_no_cors_headers(cors_api):
    r = cors_api.get("/compute/", headers={"Origin": EVIL})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    assert "Origin" in r.headers.get("vary", "")


def test_same_origin_writes_work(cors_api):
    r = cors_api.post("/compute/", COMPUTE, headers={"Origin": OWN})
    assert r.status_code == 201, r.text
    r = cors_api.delete(cors_api.path_of(r), headers={"Origin": OWN})
    assert r.status_code == 200
    # and clients that send no Origin (curl, scripts) are not concerned
    assert cors_api.post("/compute/", COMPUTE).status_code == 201


def test_base_url_names_the_own_origin(tmp_path):
    settings = Settings.from_mapping(
        {
            "database_url": f"sqlite:///{tmp_path}/b.db",
            "base_url": "https://cloud.example:8443/",
            "auth": "none",
        }
    )
    app, service = build(settings, upgrade=True, run_jobs=False)
    api = Api(testing.TestClient(app), service)
    try:
        assert api.post("/compute/", COMPUTE, headers={"Origin": OWN}).status_code == 403
        ok = api.post("/compute/", COMPUTE, headers={"Origin": "https://cloud.example:8443"})
        assert ok.status_code == 201, ok.text
    finally:
        service.store.close()


def test_allowed_origin_gets_the_cors_answer(cors_api):
    r = cors_api.post("/compute/", COMPUTE, headers={"Origin": ALLOWED})
    assert r.status_code == 201, r.text
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert r.headers["access-control-allow-credentials"] == "true"
    exposed = [h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")]
    for name in ("location", "etag", "x-occi-location", "x-request-id", "x-occi-error-code"):
        assert name in exposed
    assert "Origin" in r.headers["vary"]
    gone = cors_api.delete(cors_api.path_of(r), headers={"Origin": ALLOWED})
    assert gone.status_code == 200
    assert gone.headers["access-control-allow-origin"] == ALLOWED
    # errors carry the headers too, so the page can read why
    missing = cors_api.get("/compute/nope", headers={"Origin": ALLOWED})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == ALLOWED


def test_preflight_from_allowed_origin(cors_api):
    r = cors_api.request(
        "OPTIONS",
        "/compute/",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "authorization, content-type, x-occi-attribute",
        },
        accept=None,
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "DELETE" in r.headers["access-control-allow-methods"]
    allowed = [h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")]
    for name in ("authorization", "content-type", "x-occi-attribute", "x-auth-token", "if-match"):
        assert name in allowed
    assert int(r.headers["access-control-max-age"]) > 0
    assert cors_api.count("/compute/") == 0


def test_preflight_from_another_site_allows_nothing(cors_api):
    r = cors_api.request(
        "OPTIONS",
        "/compute/",
        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
        accept=None,
    )
    assert r.status_code == 204
    for name in r.headers:
        assert not name.lower().startswith("access-control-"), name


def test_wildcard_allows_preflighted_writes_but_not_form_posts(tmp_path):
    settings = Settings.from_mapping(
        {"database_url": f"sqlite:///{tmp_path}/w.db", "cors_origins": "*", "auth": "none"}
    )
    app, service = build(settings, upgrade=True, run_jobs=False)
    api = Api(testing.TestClient(app), service)
    try:
        form = api.post("/compute/", TEXT_COMPUTE, headers={"Origin": EVIL}, ctype="text/plain")
        assert form.status_code == 403
        r = api.post("/compute/", COMPUTE, headers={"Origin": EVIL})  # JSON: preflighted
        assert r.status_code == 201, r.text
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers
    finally:
        service.store.close()


def test_json_is_the_default(cors_api):
    r = cors_api.get("/compute/", headers={"Origin": ALLOWED}, accept=JSON)
    assert r.headers["access-control-allow-origin"] == ALLOWED


def test_preflight_needs_no_credentials_but_the_request_does(tmp_path):
    settings = Settings.from_mapping(
        {"database_url": f"sqlite:///{tmp_path}/a.db", "cors_origins": ALLOWED, "auth": "basic"}
    )
    app, service = build(settings, upgrade=True, run_jobs=False)
    api = Api(testing.TestClient(app), service)
    try:
        pre = api.request(
            "OPTIONS",
            "/compute/",
            headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"},
            accept=None,
        )
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == ALLOWED
        r = api.post("/compute/", COMPUTE, headers={"Origin": ALLOWED})
        assert r.status_code == 401
        # the page may read why (and the challenge)
        assert r.headers["access-control-allow-origin"] == ALLOWED
        # a refused origin is refused before authentication is even asked
        evil = api.post("/compute/", COMPUTE, headers={"Origin": EVIL})
        assert evil.status_code == 403
        assert evil.headers["X-OCCI-Error-Code"] == "origin_refused"
    finally:
        service.store.close()

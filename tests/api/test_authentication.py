"""Authentication through the real app (falcon's TestClient) and one real gunicorn: 401 with a
challenge per method in every rendering, the same refusal whatever was wrong, Basic and both
token headers, the cache of verified credentials (and the revocation delay it brings), the
throttle on failures, the project of a request (X-OCCI-Project), and auth = none."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import requests
from falcon import testing

from occi.api.wsgi import build
from occi.identity.passwords import hash_password
from occi.identity.principal import Principal
from occi.identity.store import IdentityTx
from occi.settings import Settings
from occi.store.sql import users
from tests.api.conftest import INFRA, JSON
from tests.live import ROOT, LiveServer

PASSWORD = "correct horse battery"
XML = "application/xml"
TEXT = "text/plain"
#: the media type each Accept gets
RENDERED = {JSON: JSON, TEXT: TEXT, XML: "application/occi+xml"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


class Cloud:
    """The real app with authentication on, and identities made through IdentityTx."""

    def __init__(self, tmp_path, **settings):
        raw = {"database_url": f"sqlite:///{tmp_path}/auth.db", "log_level": "WARNING"}
        raw.update({k: str(v) for k, v in settings.items()})
        self.app, self.service = build(Settings.from_mapping(raw), upgrade=True, run_jobs=False)
        self.client = testing.TestClient(self.app)
        self.tmp = tmp_path

    def ident(self, fn):
        with self.service.store.begin() as tx:
            return fn(IdentityTx(tx))

    def user(self, name: str, *projects: str, role: str = "member", admin: bool = False) -> None:
        def make(ident: IdentityTx) -> None:
            ident.create_user(name, password_hash=hash_password(PASSWORD))
            for project in projects:
                if project not in [p.name for p in ident.projects()]:
                    ident.create_project(project)
                ident.grant(name, project, role)
            if admin:
                ident.grant(name, None, "admin")

        self.ident(make)

    def token(self, user: str, **kw) -> str:
        return self.ident(lambda i: i.create_token(user, **kw))[1]

    def get(self, path: str = "/compute/", headers=None, accept: str = JSON, **kw):
        return self.client.simulate_get(path, headers={"Accept": accept, **(headers or {})}, **kw)

    def close(self) -> None:
        self.service.store.close()
        self.service.backend.close()


@pytest.fixture
def cloud(tmp_path):
    made: list[Cloud] = []

    def make(**settings) -> Cloud:
        c = Cloud(tmp_path / str(len(made)), **settings)
        made.append(c)
        return c

    (tmp_path / "0").mkdir()
    for i in range(1, 4):
        (tmp_path / str(i)).mkdir()
    yield make
    for c in made:
        c.close()


def challenges(r) -> str:
    return r.headers.get("www-authenticate", "")


# ---------------------------------------------------------------------------- 401
@pytest.mark.parametrize("accept", [JSON, TEXT, XML])
@pytest.mark.parametrize("path", ["/compute/", "/compute/abc", "/-/", "/no/such/", "/"])
def test_no_credentials_401_with_a_challenge_per_method(cloud, accept, path):
    c = cloud()
    r = c.get(path, accept=accept)
    assert r.status_code == 401, r.text
    assert 'Basic realm="occi"' in challenges(r)
    assert 'Bearer realm="occi"' in challenges(r)
    assert r.headers["x-occi-error-code"] == "unauthorized"
    assert "authentication required" in r.text and "X-Auth-Token" in r.text
    assert r.headers["content-type"].startswith(RENDERED[accept])
    assert r.headers.get("x-request-id")
    if accept == JSON:
        assert r.json["error"]["error_code"] == "unauthorized"


def test_the_message_names_the_enabled_methods(cloud):
    from occi.identity.authn import REQUIRED

    assert cloud().get().json["error"]["message"] == REQUIRED
    r = cloud(auth="token").get()
    assert r.json["error"]["message"] == (
        "authentication required: send a token (Authorization: Bearer / X-Auth-Token)"
    )
    assert challenges(r) == 'Bearer realm="occi"'


def test_every_method_is_authenticated_not_only_get(cloud):
    c = cloud()
    body = json.dumps({"kind": INFRA + "compute"})
    for method in ("POST", "PUT", "DELETE", "HEAD", "OPTIONS"):
        r = c.client.simulate_request(
            method, "/compute/x", body=body, headers={"Content-Type": JSON}
        )
        assert r.status_code == 401, (method, r.status)
    c.user("alice", "p1")
    ok = c.client.simulate_post(
        "/compute/", body=body, headers={"Content-Type": JSON, **basic("alice", PASSWORD)}
    )
    assert ok.status_code == 201, ok.text


def test_healthz_and_metrics_stay_open(cloud):
    c = cloud()
    assert c.get("/healthz").status_code == 200
    assert c.get("/metrics", accept="text/plain").status_code == 200


def _refusal(r) -> tuple[int, str, str]:
    return r.status_code, r.text, challenges(r)


def test_every_wrong_credential_gets_the_same_401(cloud, caplog):
    c = cloud()
    c.user("alice", "p1")
    c.user("bob", "p1")
    c.ident(
        lambda i: i.conn.execute(users.update().where(users.c.name == "bob").values(disabled=True))
    )
    expired = c.token("alice", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    revoked = c.token("alice")
    c.ident(lambda i: i.revoke_token(revoked.split("_")[1]))
    wrong = [
        basic("alice", "not the password"),
        basic("nobody", PASSWORD),
        basic("bob", PASSWORD),  # disabled, right password
        bearer(expired),
        bearer(revoked),
        {"X-Auth-Token": revoked},
        {"X-Auth-Token": c.token("alice")[:-2] + "xx"},
        bearer("occi_0000000000000000_nosuchsecret"),
        bearer("not-a-token-at-all"),
        {"Authorization": "Basic !!!not base64"},
    ]
    caplog.set_level(logging.WARNING, logger="occi.auth")
    answers = {_refusal(c.get(headers=h)) for h in wrong}
    assert len(answers) == 1, answers
    ((status, text, _),) = answers
    assert status == 401 and "the credentials were not accepted" in text
    # each failure is logged with address, user and method, never the secret
    failures = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert len(failures) == len(wrong)
    assert any("user nobody, method basic" in m for m in failures)
    assert any("user bob, method basic" in m and "disabled" in m for m in failures)
    assert not any(PASSWORD in m or "not the password" in m or revoked in m for m in failures)


def test_good_basic_bearer_and_x_auth_token(cloud):
    c = cloud()
    c.user("alice", "p1")
    token = c.token("alice")
    for headers in (basic("alice", PASSWORD), bearer(token), {"X-Auth-Token": token}):
        r = c.get(headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["x-occi-project"] == "p1"
    # the scheme's name is case-insensitive
    r = c.get(headers={"Authorization": "bearer " + token})
    assert r.status_code == 200


# ---------------------------------------------------------------------------- cache
def test_a_revoked_token_works_until_the_cache_forgets_it(cloud):
    c = cloud(auth_cache_seconds=3600)
    c.user("alice", "p1")
    token = c.token("alice")
    assert c.get(headers=bearer(token)).status_code == 200
    c.ident(lambda i: i.revoke_token(token.split("_")[1]))
    # verified a moment ago: this process trusts it for auth_cache_seconds (README)
    assert c.get(headers=bearer(token)).status_code == 200
    # another server process on the same database, which has not seen it, refuses it at once
    other = Cloud(c.tmp, auth_cache_seconds=3600)
    try:
        assert other.get(headers=bearer(token)).status_code == 401
    finally:
        other.close()


def test_cached_credentials_expire_after_the_ttl():
    from occi.identity.cache import TtlCache, credential_key

    now = [100.0]
    cache: TtlCache[str] = TtlCache(30, maxsize=2, clock=lambda: now[0])
    key = credential_key("token", "occi_a_b")
    assert "occi_a_b" not in key and key != credential_key("basic", "occi_a_b")
    assert credential_key("basic", "ab", "c") != credential_key("basic", "a", "bc")
    cache.put(key, "alice")
    now[0] += 29.9
    assert cache.get(key) == "alice"
    now[0] += 0.2
    assert cache.get(key) is None
    for n in range(3):  # bounded: the least recently used goes first
        cache.put(str(n), str(n))
    assert cache.get("0") is None and cache.get("2") == "2" and len(cache) == 2
    assert TtlCache(0).get("x") is None


def test_without_a_cache_a_revoked_token_is_refused_at_once(cloud):
    c = cloud(auth_cache_seconds=0)
    c.user("alice", "p1")
    token = c.token("alice")
    assert c.get(headers=bearer(token)).status_code == 200
    c.ident(lambda i: i.revoke_token(token.split("_")[1]))
    assert c.get(headers=bearer(token)).status_code == 401


def test_a_failure_is_not_cached_as_a_success(cloud):
    c = cloud()
    c.user("alice", "p1")
    assert c.get(headers=basic("alice", "wrong")).status_code == 401
    assert c.get(headers=basic("alice", "wrong")).status_code == 401
    assert c.get(headers=basic("alice", PASSWORD)).status_code == 200


# ---------------------------------------------------------------------------- throttle
def test_past_the_limit_even_the_right_password_gets_429(cloud, caplog):
    c = cloud(auth_fail_limit=3, auth_fail_window=600)
    c.user("alice", "p1")
    c.user("carol", "p1")
    attacker = "192.0.2.7"
    for _ in range(3):
        r = c.get(headers=basic("alice", "guess"), remote_addr=attacker)
        assert r.status_code == 401
    caplog.clear()
    for accept in (JSON, TEXT):
        r = c.get(headers=basic("carol", PASSWORD), remote_addr=attacker, accept=accept)
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["x-occi-error-code"] == "too_many_requests"
        assert "too many failed authentications" in r.text
    # refused before any verification: nothing was checked, so no failure was logged
    assert not [r for r in caplog.records if "authentication failed" in r.getMessage()]
    # other addresses are not affected, for another user
    assert c.get(headers=basic("carol", PASSWORD), remote_addr="198.51.100.1").status_code == 200
    # but the user name guessed at is throttled from every address
    r = c.get(headers=basic("alice", PASSWORD), remote_addr="198.51.100.2")
    assert r.status_code == 429


def test_the_throttle_counts_token_failures_per_address(cloud):
    c = cloud(auth_fail_limit=2, auth_fail_window=600)
    c.user("alice", "p1")
    token = c.token("alice")
    for _ in range(2):
        assert c.get(headers=bearer(token + "x"), remote_addr="192.0.2.9").status_code == 401
    assert c.get(headers=bearer(token), remote_addr="192.0.2.9").status_code == 429
    assert c.get(headers=bearer(token), remote_addr="192.0.2.10").status_code == 200


def test_failure_log_lines_are_rate_limited(cloud, caplog):
    from occi.identity.throttle import LOG_LINES

    c = cloud(auth_fail_limit=1000, auth_fail_window=600)
    caplog.set_level(logging.WARNING, logger="occi.auth")
    for n in range(LOG_LINES + 30):
        c.get(headers=bearer(f"occi_{n:016x}_guess"), remote_addr=f"10.0.{n // 250}.{n % 250}")
    lines = [r for r in caplog.records if "authentication failed" in r.getMessage()]
    assert len(lines) == LOG_LINES


# ---------------------------------------------------------------------------- project
def test_a_user_with_one_project_needs_no_header(cloud):
    c = cloud()
    c.user("alice", "p1")
    assert c.get(headers=basic("alice", PASSWORD)).headers["x-occi-project"] == "p1"


def test_a_user_with_two_projects_names_one(cloud):
    c = cloud()
    c.user("alice", "p1", "p2")
    r = c.get(headers=basic("alice", PASSWORD))
    assert r.status_code == 400
    assert "name one with X-OCCI-Project: p1, p2" in r.text
    for name in ("p1", "p2"):
        r = c.get(headers={**basic("alice", PASSWORD), "X-OCCI-Project": name})
        assert r.status_code == 200 and r.headers["x-occi-project"] == name
    # by id too
    pid = c.ident(lambda i: i.project("p2").id)
    r = c.get(headers={**basic("alice", PASSWORD), "X-OCCI-Project": pid})
    assert r.status_code == 200 and r.headers["x-occi-project"] == "p2"


def test_a_project_without_a_role_and_an_unknown_one_get_the_same_403(cloud):
    c = cloud()
    c.user("alice", "p1")
    c.user("bob", "p2")
    h = basic("alice", PASSWORD)
    other = c.get(headers={**h, "X-OCCI-Project": "p2"})
    unknown = c.get(headers={**h, "X-OCCI-Project": "p3"})
    assert other.status_code == unknown.status_code == 403
    assert other.text.replace("p2", "X") == unknown.text.replace("p3", "X")
    assert "yours: p1" in other.text


def test_a_user_without_roles_gets_403(cloud):
    c = cloud()
    c.user("dave")
    r = c.get(headers=basic("dave", PASSWORD))
    assert r.status_code == 403
    assert "no role in any project" in r.text


def test_an_admin_names_any_project(cloud):
    c = cloud()
    c.user("alice", "p1", "p2")
    c.user("root", admin=True)
    h = basic("root", PASSWORD)
    r = c.get(headers=h)
    assert r.status_code == 200 and r.headers["x-occi-project"] == "default"
    r = c.get(headers={**h, "X-OCCI-Project": "p2"})
    assert r.status_code == 200 and r.headers["x-occi-project"] == "p2"
    r = c.get(headers={**h, "X-OCCI-Project": "nosuch"})
    assert r.status_code == 400 and "no project named nosuch" in r.text


def test_a_scoped_token_acts_in_its_project_only(cloud):
    c = cloud()
    c.user("alice", "p1", "p2")
    token = c.token("alice", project="p2")
    r = c.get(headers=bearer(token))
    assert r.status_code == 200 and r.headers["x-occi-project"] == "p2"
    r = c.get(headers={**bearer(token), "X-OCCI-Project": "p2"})
    assert r.status_code == 200
    r = c.get(headers={**bearer(token), "X-OCCI-Project": "p1"})
    assert r.status_code == 403 and "scoped to the project p2" in r.text


def test_a_malformed_project_header_is_400(cloud):
    c = cloud()
    c.user("alice", "p1")
    r = c.get(headers={**basic("alice", PASSWORD), "X-OCCI-Project": "p1; drop"})
    assert r.status_code == 400 and "X-OCCI-Project" in r.text


def test_the_context_holds_the_roles_on_the_project(cloud):
    c = cloud()
    c.user("alice", "p1")
    c.ident(lambda i: (i.create_project("p2"), i.grant("alice", "p2", "reader")))
    c.ident(lambda i: i.grant("alice", None, "admin"))
    from occi.identity.authn import Authenticator, BasicMethod

    auth = Authenticator([BasicMethod()], c.service.store)
    p = auth.authenticate({k.lower(): v for k, v in basic("alice", PASSWORD).items()}, "::1")
    assert isinstance(p, Principal) and p.admin
    ctx = auth.context(p, "p2", "rid-1")
    assert (ctx.user, ctx.project_name, ctx.roles) == (
        "alice",
        "p2",
        frozenset({"reader", "admin"}),
    )
    assert ctx.request_id == "rid-1" and ctx.can_write  # admin
    ctx = auth.context(p, "p1", None)
    assert ctx.roles == frozenset({"member", "admin"}) and ctx.request_id


# ---------------------------------------------------------------------------- auth = none
def test_auth_none_warns_and_acts_in_the_auth_project(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    settings = Settings.from_mapping({"database_url": f"sqlite:///{tmp_path}/n.db", "auth": "none"})
    app, service = build(settings, upgrade=True, run_jobs=False)
    try:
        assert any("authentication is off" in r.getMessage() for r in caplog.records)
        r = testing.TestClient(app).simulate_get("/compute/", headers={"Accept": JSON})
        assert r.status_code == 200
    finally:
        service.store.close()
        service.backend.close()


def test_auth_none_with_an_unknown_auth_project_is_a_settings_error(tmp_path):
    from occi.settings import SettingsError

    settings = Settings.from_mapping(
        {"database_url": f"sqlite:///{tmp_path}/n.db", "auth": "none", "auth_project": "nosuch"}
    )
    with pytest.raises(SettingsError, match="auth_project names no project"):
        build(settings, upgrade=True, run_jobs=False)


def test_an_unavailable_method_is_a_settings_error():
    import importlib.util

    from occi.identity.authn import methods_from_settings
    from occi.settings import SettingsError

    for name in ("oidc", "x509"):
        if importlib.util.find_spec(f"occi.identity.{name}") is None:
            with pytest.raises(SettingsError, match=name):
                methods_from_settings(Settings.from_mapping({"auth": f"basic,{name}"}))


# ---------------------------------------------------------------------------- real gunicorn
def cli(tmp_path, url: str, *args: str, stdin: str | None = None) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
    env.update({"PYTHONPATH": str(ROOT), "OCCI_DATABASE_URL": url, "OCCI_LOG_LEVEL": "WARNING"})
    p = subprocess.run(
        [sys.executable, "-m", "occi.cli", *args],
        cwd=tmp_path,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.server
def test_authentication_under_gunicorn(tmp_path):
    url = f"sqlite:///{tmp_path}/occi.db"
    srv = LiveServer(tmp_path, database_url=url, workers=1, auth="basic,token", auth_fail_limit=2)
    try:
        cli(tmp_path, url, "projects", "create", "p1")
        cli(tmp_path, url, "users", "create", "alice", "--password-stdin", stdin=PASSWORD + "\n")
        cli(tmp_path, url, "roles", "grant", "alice", "p1", "member")
        token = cli(tmp_path, url, "tokens", "create", "alice").strip()
        r = requests.get(srv.url + "/compute/", headers={"Accept": JSON}, timeout=30)
        assert r.status_code == 401
        assert r.json()["error"]["message"].startswith("authentication required")
        assert 'Basic realm="occi"' in r.headers["WWW-Authenticate"]
        assert 'Bearer realm="occi"' in r.headers["WWW-Authenticate"]
        assert requests.get(srv.url + "/healthz", timeout=30).status_code == 200
        for headers in (
            basic("alice", PASSWORD),
            bearer(token),
            {"X-Auth-Token": token},
        ):
            r = requests.get(srv.url + "/compute/", headers={"Accept": JSON, **headers}, timeout=30)
            assert r.status_code == 200, r.text
            assert r.headers["X-OCCI-Project"] == "p1"
        r = requests.post(
            srv.url + "/compute/",
            json={"kind": INFRA + "compute"},
            headers={"Content-Type": JSON, "Accept": JSON, **bearer(token)},
            timeout=60,
        )
        assert r.status_code == 201, r.text
        # the throttle: the server trusts X-Forwarded-For from 127.0.0.1 (x509_proxies)
        fwd = {"X-Forwarded-For": "203.0.113.5"}
        for _ in range(2):
            r = requests.get(
                srv.url + "/-/", headers={**fwd, **basic("alice", "guess")}, timeout=30
            )
            assert r.status_code == 401
        r = requests.get(srv.url + "/-/", headers={**fwd, **bearer(token)}, timeout=30)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        other = {"X-Forwarded-For": "203.0.113.6"}
        r = requests.get(srv.url + "/-/", headers={**other, **bearer(token)}, timeout=30)
        assert r.status_code == 200
        out = srv.output()
        assert "authentication failed: address 203.0.113.5, user alice, method basic" in out
        assert "guess" not in out and token not in out
    finally:
        srv.stop()


def test_methods_see_the_peer_and_the_throttle_the_client(cloud, caplog):
    """Behind a trusted proxy the throttle and the log take the client's address from
    X-Forwarded-For, while the methods are given the connection's own (X.509 believes only
    headers its proxies send)."""
    from occi.identity.authn import Authenticator
    from occi.identity.principal import AuthFailed, Presented

    class Seen:
        name = "seen"
        peers: list[str] = []

        def challenge(self) -> str:
            return "Seen"

        def find(self, headers, remote_addr):
            self.peers.append(remote_addr)
            return Presented(self.name, "k", "someone", "s")

        def verify(self, presented, store):
            raise AuthFailed("never", presented.user)

    c = cloud()
    auth = Authenticator([Seen()], c.service.store, proxies="127.0.0.1")
    address = auth.address("127.0.0.1", "192.0.2.1, 198.51.100.4")
    assert address == "198.51.100.4"
    assert auth.address("192.0.2.50", "198.51.100.4") == "192.0.2.50"  # not a proxy: ignored
    caplog.set_level(logging.WARNING, logger="occi.auth")
    with pytest.raises(Exception, match="not accepted"):
        auth.authenticate({}, address, "127.0.0.1")
    assert Seen.peers == ["127.0.0.1"]
    assert "address 198.51.100.4, user someone, method seen" in caplog.text


def test_a_bearer_jwt_is_left_to_oidc_when_it_is_enabled():
    from occi.identity.authn import TokenMethod
    from occi.identity.principal import AuthFailed

    jwt = {"authorization": "Bearer aaa.bbb.ccc"}
    assert TokenMethod(defer_bearer=True).find(jwt, "::1") is None
    with pytest.raises(AuthFailed):
        TokenMethod(defer_bearer=False).find(jwt, "::1")
    with pytest.raises(AuthFailed):  # X-Auth-Token is this server's own header
        TokenMethod(defer_bearer=True).find({"x-auth-token": "aaa.bbb.ccc"}, "::1")
    found = TokenMethod().find({"x-auth-token": " occi_ab_cd "}, "::1")
    assert found is not None and found.secret == "occi_ab_cd" and "occi_ab_cd" not in found.key

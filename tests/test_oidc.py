"""OIDC bearer tokens, method by method: a real issuer over HTTP (tests/oidc_issuer.py) and a
real database. What a token must be to be believed, what is never fetched, users made once,
roles from entitlements."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from occi.identity.oidc import (
    MAX_RESPONSE,
    REFETCH_INTERVAL,
    OidcMethod,
    entitlement_pattern,
    method_from_settings,
    role_map,
)
from occi.identity.principal import AuthFailed, Principal
from occi.identity.store import IdentityTx
from occi.settings import Settings, SettingsError
from occi.store import make_store
from occi.store.sql import SqlStore
from tests.oidc_issuer import OidcIssuer

EGI = "urn:mace:egi.eu:group:{}:role={}#aai.egi.eu"
DISCOVERY, JWKS = "/.well-known/openid-configuration", "/jwks"


class Clock:
    """Time the method sees, moved by the test (no sleeping, no timing)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    i = OidcIssuer()
    try:
        yield i
    finally:
        i.stop()


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlStore]:
    s = make_store(sqlite_url)
    assert isinstance(s, SqlStore)
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def method(issuer: OidcIssuer, clock: Clock) -> OidcMethod:
    return OidcMethod([issuer.url], audience="occi", leeway=5, clock=clock)


def login(method: OidcMethod, store: SqlStore, token: str) -> Principal:
    presented = method.find({"authorization": f"Bearer {token}"}, "192.0.2.1")
    assert presented is not None
    assert presented.key == hashlib.sha256(token.encode()).hexdigest()
    return method.verify(presented, store)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A JWT made by hand: HMAC-SHA256 with `key`, or no signature at all."""
    signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    sig = hmac.new(key, signing.encode(), hashlib.sha256).digest() if key is not None else b""
    return signing + "." + b64(sig)


# ------------------------------------------------------------------ finding
def test_only_bearer_jwts_are_this_methods(method):
    assert method.find({}, "192.0.2.1") is None
    assert method.find({"authorization": "Basic YWxpY2U6cHc="}, "192.0.2.1") is None
    # an API token is the token method's
    assert method.find({"authorization": "Bearer occi_abc_def"}, "192.0.2.1") is None
    found = method.find({"authorization": "bearer  a.b.c"}, "192.0.2.1")
    assert found is not None and found.secret == "a.b.c" and found.method == "oidc"
    with pytest.raises(AuthFailed, match="characters"):
        method.find({"authorization": "Bearer " + "a" * 20000 + ".b.c"}, "192.0.2.1")
    assert method.challenge() == 'Bearer realm="occi"'


# ------------------------------------------------------------------ good tokens
def test_a_good_token_makes_its_user_once_and_keys_are_fetched_once(method, store, issuer):
    first = login(method, store, issuer.token(preferred_username="alice"))
    assert (first.name, first.method, first.admin, dict(first.roles)) == (
        "alice",
        "oidc",
        False,
        {},
    )
    again = login(method, store, issuer.token(preferred_username="alice", jti="2"))
    assert again.user_id == first.user_id
    with store.begin(readonly=True) as tx:
        users = [u for u in IdentityTx(tx).users() if u.oidc_subject == "subject-1"]
    assert [(u.name, u.oidc_issuer, u.methods) for u in users] == [("alice", issuer.url, ["oidc"])]
    assert (issuer.hits[DISCOVERY], issuer.hits[JWKS]) == (1, 1)


def test_a_taken_name_is_never_linked_to_a_new_subject(method, store, issuer):
    with store.begin() as tx:
        IdentityTx(tx).create_user("alice", password_hash="$argon2id$x")
    p = login(method, store, issuer.token(preferred_username="alice", email="a@example.org"))
    assert p.name == "a@example.org"
    q = login(method, store, issuer.token(sub="other", preferred_username="alice"))
    assert q.name.startswith("oidc-") and q.user_id != p.user_id
    with store.begin(readonly=True) as tx:
        alice = IdentityTx(tx).user("alice")
    assert alice.oidc_subject is None and alice.id not in (p.user_id, q.user_id)
    # an invalid preferred name is not used either
    r = login(method, store, issuer.token(sub="third", preferred_username="no spaces/please"))
    assert r.name.startswith("oidc-")


def test_entitlements_give_roles_on_existing_projects_only(method, store, issuer):
    with store.begin() as tx:
        ident = IdentityTx(tx)
        vo = ident.create_project("vo.example.org")
        readers = ident.create_project("readers")
        stored = ident.create_project("stored")
        ident.create_user("bob", oidc_issuer=issuer.url, oidc_subject="bob-sub")
        ident.grant("bob", "stored", "reader")
        ident.grant("bob", "readers", "member")  # member wins over a claimed reader
    token = issuer.token(
        sub="bob-sub",
        eduperson_entitlement=[
            EGI.format("vo.example.org", "vm_operator"),
            EGI.format("vo.example.org", "reader"),  # member wins
            EGI.format("readers", "reader"),
            EGI.format("nowhere", "member"),  # no such project
            EGI.format("vo.example.org", "admin").replace("#aai", "#evil"),
            # the dots of the template are literal
            "urn:mace:egiXeu:group:stored:role=member#aai.egi.eu",
            EGI.format("stored", "member") + "x",
            EGI.format("stored", "janitor"),  # a role nobody maps
            42,
        ],
        groups=[EGI.format("stored", "member")],  # only the first claim present counts
    )
    p = login(method, store, token)
    assert p.name == "bob" and not p.admin
    assert dict(p.roles) == {
        vo.id: ("vo.example.org", "member"),
        readers.id: ("readers", "member"),
        stored.id: ("stored", "reader"),
    }


def test_stored_admin_role_counts(method, store, issuer):
    with store.begin() as tx:
        IdentityTx(tx).create_user("root", oidc_issuer=issuer.url, oidc_subject="root-sub")
        IdentityTx(tx).grant("root", None, "admin")
    assert login(method, store, issuer.token(sub="root-sub")).admin


@pytest.mark.parametrize("alg", ["PS256", "ES256", "ES384", "EdDSA"])
def test_every_asymmetric_key_type_signs_and_only_its_own_algorithms(
    method, store, issuer, clock, alg
):
    issuer.rotate(alg=alg)
    issuer.jwk_alg = False  # only the key's type (and curve) tells what it can check
    assert login(method, store, issuer.token(preferred_username="kim")).name == "kim"
    # the same key claimed for an algorithm of another key type (or curve) is not used
    other = {"PS256": "ES256", "ES256": "ES384", "ES384": "RS256", "EdDSA": "ES256"}[alg]
    head = {"alg": other, "kid": issuer.kid, "typ": "JWT"}
    body = issuer.token().split(".", 1)[1]
    refused(method, store, b64(json.dumps(head).encode()) + "." + body, "no signing key")


# ------------------------------------------------------------------ refused tokens
def refused(method, store, token: str, match: str) -> None:
    with pytest.raises(AuthFailed, match=match):
        login(method, store, token)


@pytest.mark.parametrize(
    "claims, match",
    [
        ({"aud": "someone-else"}, "Audience doesn't match|Invalid audience"),
        ({"aud": None}, "aud"),
        ({"exp": 1_000_000_000}, "expired"),
        ({"exp": None}, "exp"),
        ({"nbf": 4_000_000_000}, "not yet valid"),
        ({"sub": None}, "sub"),
        ({"sub": ""}, "subject"),
    ],
)
def test_tokens_with_bad_claims_are_refused(method, store, issuer, claims, match):
    refused(method, store, issuer.token(**claims), match)


def test_tokens_not_signed_by_the_issuers_key_are_refused(method, store, issuer):
    claims = issuer.claims()
    refused(method, store, forged({"alg": "none", "typ": "JWT"}, claims, None), "'none'")
    refused(method, store, forged({"alg": "none", "kid": issuer.kid}, claims, None), "'none'")
    pem = (
        issuer.keys[issuer.kid]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    confused = forged({"alg": "HS256", "kid": issuer.kid}, claims, pem)
    refused(method, store, confused, "HS256")
    # the same forgery claiming RS256: the HMAC is no RSA signature
    confused = forged({"alg": "RS256", "kid": issuer.kid}, claims, pem)
    refused(method, store, confused, "Signature verification failed")
    good = issuer.token(sub="someone")
    head, body, sig = good.split(".")
    tampered = b64(json.dumps(issuer.claims(sub="admin")).encode())
    refused(method, store, f"{head}.{tampered}.{sig}", "Signature verification failed")
    refused(method, store, "abc.def.ghi", "malformed")
    with store.begin(readonly=True) as tx:
        assert all(u.oidc_issuer is None for u in IdentityTx(tx).users())


def test_a_token_of_an_untrusted_issuer_fetches_nothing(method, store, issuer):
    other = OidcIssuer()
    try:
        refused(method, store, other.token(), "not trusted")
        # its iss claims to be ours, but its key is not ours
        refused(method, store, other.token(iss=issuer.url, kid=other.kid), "no signing key")
        assert sum(other.hits.values()) == 0
    finally:
        other.stop()
    # a kid ours does not have made one fetch of ours (rotation), nothing more
    assert (issuer.hits[DISCOVERY], issuer.hits[JWKS]) == (1, 1)


def test_an_issuer_not_configured_is_not_even_asked(store, issuer):
    method = OidcMethod(["https://aai.example.org/realm"], audience="occi")
    refused(method, store, issuer.token(), "not trusted")
    assert sum(issuer.hits.values()) == 0


# ------------------------------------------------------------------ key rotation
def test_rotated_keys_are_fetched_again_but_junk_kids_do_not_hammer(method, store, issuer, clock):
    login(method, store, issuer.token())
    assert issuer.hits[JWKS] == 1
    clock.now += REFETCH_INTERVAL  # a while later the issuer rotates its key
    old, old_key = issuer.kid, issuer.keys[issuer.kid]
    issuer.rotate()
    assert login(method, store, issuer.token(jti="new")).name
    assert issuer.hits[JWKS] == 2
    # the withdrawn key is no longer trusted
    withdrawn = jwt.encode(issuer.claims(), old_key, algorithm="RS256", headers={"kid": old})
    refused(method, store, withdrawn, "no signing key")
    assert issuer.hits[JWKS] == 2  # within the interval: no fetch for it
    # a burst of junk key ids: at most one fetch per interval
    for n in range(20):
        refused(method, store, issuer.token(headers={"kid": f"junk{n}"}), "no signing key")
    assert issuer.hits[JWKS] == 2
    clock.now += REFETCH_INTERVAL
    for n in range(20):
        refused(method, store, issuer.token(headers={"kid": f"junk{n}"}), "no signing key")
    assert issuer.hits[JWKS] == 3
    assert issuer.hits[DISCOVERY] == 1  # the jwks_uri is kept


def test_an_unreachable_issuer_is_not_hammered(store, clock):
    down = OidcIssuer()
    url, token = down.url, down.token()
    down.stop()
    method = OidcMethod([url], audience="occi", clock=clock)
    for _ in range(5):
        refused(method, store, token, "unavailable|no signing key")
    assert method.issuers[url].fetches == 1


def test_an_oversized_answer_of_the_issuer_is_not_believed(method, store, issuer, clock, caplog):
    issuer.padding = MAX_RESPONSE
    refused(method, store, issuer.token(), "no signing key")
    assert "more than" in caplog.text
    clock.now += REFETCH_INTERVAL
    issuer.padding = 0
    assert login(method, store, issuer.token()).name


# ------------------------------------------------------------------ first sight, in parallel
def test_first_requests_in_parallel_make_one_user(db_url, issuer):
    store = make_store(db_url)
    store.upgrade()
    method = OidcMethod([issuer.url], audience="occi")
    tokens = [issuer.token(sub="racer", preferred_username="racer", jti=str(n)) for n in range(6)]
    barrier = threading.Barrier(len(tokens))
    got: list[Principal | BaseException] = []

    def run(token: str) -> None:
        barrier.wait()
        try:
            got.append(login(method, store, token))
        except BaseException as exc:  # noqa: BLE001 - reported below
            got.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert {p.user_id if isinstance(p, Principal) else repr(p) for p in got} == {
            got[0].user_id  # type: ignore[union-attr]
        }
        with store.begin(readonly=True) as tx:
            assert [u.name for u in IdentityTx(tx).users() if u.oidc_subject] == ["racer"]
    finally:
        store.close()


# ------------------------------------------------------------------ settings
def test_settings_make_the_method_or_say_what_is_wrong(issuer):
    with pytest.raises(SettingsError, match="oidc_issuers names no issuer"):
        method_from_settings(Settings.load(environ={}))
    env = {"OCCI_OIDC_ISSUERS": f"{issuer.url} https://aai.egi.eu/auth/realms/egi"}
    m = method_from_settings(Settings.load(environ=env))
    assert list(m.issuers) == [issuer.url, "https://aai.egi.eu/auth/realms/egi"]
    assert m.audience is None and m.groups_claims[0] == "eduperson_entitlement"
    with pytest.raises(SettingsError, match="not an http"):
        method_from_settings(Settings.load(environ={"OCCI_OIDC_ISSUERS": "file:///etc"}))
    with pytest.raises(SettingsError, match="once each"):
        entitlement_pattern("group:{project}")
    with pytest.raises(SettingsError, match="oidc_roles"):
        role_map("admin=owner")
    assert role_map("reader=viewer member, member=member viewer") == {
        "viewer": "member",
        "member": "member",
    }
    pattern = entitlement_pattern("a.b:{project}(x)*:{role}")
    assert pattern.fullmatch("a.b:p1(x)*:r")["project"] == "p1"  # type: ignore[index]
    assert pattern.fullmatch("aXb:p1(x)*:r") is None


# ------------------------------------------------------------------ through a real server
@pytest.mark.server
def test_a_jwt_signs_in_to_a_real_server(tmp_path, issuer):
    from tests.live import LiveServer
    from tests.test_cli_identity import admin, ok

    url = f"sqlite:///{tmp_path / 'occi.db'}"
    ok(admin(tmp_path, url, "migrate"))
    ok(admin(tmp_path, url, "projects", "create", "vo.example.org"))
    server = LiveServer(
        tmp_path,
        database_url=url,
        health="/healthz",
        auth="basic,token,oidc",
        oidc_issuers=issuer.url,
        oidc_audience="occi",
    )
    try:
        entitled = [EGI.format("vo.example.org", "vm_operator")]
        token = issuer.token(preferred_username="erin", eduperson_entitlement=entitled)
        accept = {"Accept": "application/json"}
        r = requests.get(
            server.url + "/compute/", headers={**accept, "Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200, r.text
        r = requests.get(server.url + "/compute/", headers=accept)
        assert r.status_code == 401
        assert 'Bearer realm="occi"' in r.headers["WWW-Authenticate"]
        wrong = issuer.token(preferred_username="erin", aud="another-service")
        r = requests.get(
            server.url + "/compute/", headers={**accept, "Authorization": f"Bearer {wrong}"}
        )
        assert r.status_code == 401
        listed = ok(admin(tmp_path, url, "users", "list"))
        assert [line.split()[:2] for line in listed.splitlines() if "erin" in line] == [
            ["erin", "oidc"]
        ]
    finally:
        server.stop()

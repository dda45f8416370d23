"""`occi-server projects|users|roles|tokens|quotas` as an administrator runs them: real
processes on a real database, their output and exit codes (0 done, 1 refused, 2 usage)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from occi.identity.passwords import verify_password
from occi.identity.store import IdentityTx
from occi.store.sql import SqlStore
from tests.test_cli import assert_one_line_error, env_for
from tests.test_store import compute


def admin(
    tmp_path: Path, url: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "occi.cli", *args],
        cwd=tmp_path,
        env=env_for(tmp_path, OCCI_DATABASE_URL=url),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'occi.db'}"
    ok(admin(tmp_path, url, "migrate"))
    return url


def test_a_project_a_user_a_role_and_a_token(tmp_path, db_url):
    ok(admin(tmp_path, db_url, "migrate"))
    assert "project team created" in ok(admin(tmp_path, db_url, "projects", "create", "team"))
    made = admin(
        tmp_path, db_url, "users", "create", "alice", "--password-stdin", stdin="s3cret-pw\n"
    )
    assert "signs in by password" in ok(made)
    ok(admin(tmp_path, db_url, "roles", "grant", "alice", "team", "member"))
    ok(admin(tmp_path, db_url, "roles", "grant", "alice", "*", "admin"))
    listed = ok(admin(tmp_path, db_url, "users", "list"))
    assert "admin member@team" in listed.splitlines()[1]
    made = admin(tmp_path, db_url, "tokens", "create", "alice", "--project", "team", "--name", "ci")
    token = ok(made).strip()
    assert token.startswith("occi_") and len(ok(made).splitlines()) == 1
    assert "shown this once" in made.stderr
    listing = ok(admin(tmp_path, db_url, "tokens", "list", "alice"))
    token_id = token.split("_")[1]
    assert token_id in listing and "active" in listing and "team" in listing
    assert token.split("_", 2)[2] not in listing  # never the secret

    store = SqlStore(db_url)
    try:
        with store.begin() as tx:
            ident = IdentityTx(tx)
            alice = ident.user("alice")
            assert alice.password_hash and alice.password_hash.startswith("$argon2id$")
            assert verify_password(alice.password_hash, "s3cret-pw")  # the newline is not in it
            found = ident.verify_token(token)
            assert found is not None and found.project_name == "team"
    finally:
        store.close()

    assert "revoked" in ok(admin(tmp_path, db_url, "tokens", "revoke", token_id))
    assert "revoked" in ok(admin(tmp_path, db_url, "tokens", "list"))
    store = SqlStore(db_url)
    try:
        with store.begin() as tx:
            assert IdentityTx(tx).verify_token(token) is None
    finally:
        store.close()
    ok(admin(tmp_path, db_url, "roles", "revoke", "alice", "team", "member"))
    ok(admin(tmp_path, db_url, "users", "delete", "alice"))
    assert "alice" not in ok(admin(tmp_path, db_url, "users", "list"))
    ok(admin(tmp_path, db_url, "projects", "delete", "team"))
    assert "team" not in ok(admin(tmp_path, db_url, "projects", "list"))


def test_federated_and_certificate_users(tmp_path, url):
    ok(
        admin(
            tmp_path,
            url,
            "users",
            "create",
            "fed",
            "--oidc-issuer",
            "https://aai",
            "--oidc-subject",
            "abc",
        )
    )
    ok(admin(tmp_path, url, "users", "create", "cert", "--x509-dn", "/DC=org/CN=Cert"))
    line = assert_one_line_error(
        admin(
            tmp_path,
            url,
            "users",
            "create",
            "fed2",
            "--oidc-issuer",
            "https://aai",
            "--oidc-subject",
            "abc",
        )
    )
    assert "OIDC subject abc" in line
    listed = ok(admin(tmp_path, url, "users", "list"))
    assert "oidc" in listed and "x509" in listed


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["users", "delete", "nobody"], None, "no user named nobody"),
        (["roles", "grant", "nobody", "default", "member"], None, "no user named nobody"),
        (["roles", "grant", "root", "nowhere", "member"], None, "no project named nowhere"),
        (["roles", "grant", "root", "default", "owner"], None, "unknown role owner"),
        (["roles", "grant", "root", "default", "admin"], None, "admin is a global role"),
        (["roles", "grant", "root", "*", "member"], None, "held on a project"),
        (["projects", "create", "default"], None, "a project named default exists"),
        (["projects", "create", "two words"], None, "invalid project name"),
        (["projects", "delete", "default"], None, "default cannot be deleted"),
        (["users", "create", "root"], None, "a user named root exists"),
        (["users", "create", "short", "--password-stdin"], "abc\n", "8 characters or more"),
        (["users", "create", "empty", "--password-stdin"], "", "stdin was empty"),
        (["tokens", "create", "nobody"], None, "no user named nobody"),
        (["tokens", "create", "root", "--project", "nowhere"], None, "no project named nowhere"),
        (["tokens", "revoke", "0123456789abcdef"], None, "no token with the id"),
        (["quotas", "show", "nowhere"], None, "no project named nowhere"),
        (["quotas", "set", "default", "gpus", "3"], None, "unknown quota gpus"),
        (["quotas", "set", "default", "cores", "-2"], None, "-1 (unlimited) or more"),
    ],
)
def test_refusals_are_one_line_and_exit_1(tmp_path, url, args, stdin, message):
    ok(admin(tmp_path, url, "users", "create", "root"))
    line = assert_one_line_error(admin(tmp_path, url, *args, stdin=stdin))
    assert message in line


@pytest.mark.parametrize(
    "args",
    [
        ["projects"],
        ["projects", "rename", "x"],
        ["users", "create"],
        ["users", "create", "x", "--oidc-issuer", "https://aai"],
        ["users", "create", "x", "--pasword-stdin"],
        ["roles", "grant", "x", "y"],
        ["tokens", "create", "x", "--expires-in", "0"],
        ["tokens", "create", "x", "--expires-in", "soon"],
        ["quotas", "set", "default", "cores", "many"],
    ],
)
def test_usage_errors_exit_2(tmp_path, url, args):
    p = admin(tmp_path, url, *args)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr


def test_help_on_each_action(tmp_path, url):
    p = admin(tmp_path, url, "tokens", "create", "--help")
    out = ok(p)
    assert "--expires-in DAYS" in out and "--project PROJECT" in out
    assert "--password-stdin" in ok(admin(tmp_path, url, "users", "create", "--help"))


def test_a_project_that_owns_entities_is_not_deleted(tmp_path, url):
    ok(admin(tmp_path, url, "projects", "create", "busy"))
    store = SqlStore(url)
    try:
        with store.begin() as tx:
            busy = IdentityTx(tx).project("busy")
            tx.insert(compute("a"), project_id=busy.id)
            tx.insert(compute("b"), project_id=busy.id)
    finally:
        store.close()
    assert "2" in ok(admin(tmp_path, url, "projects", "list")).splitlines()[1]
    line = assert_one_line_error(admin(tmp_path, url, "projects", "delete", "busy"))
    assert "still owns 2 entities" in line
    assert "busy" in ok(admin(tmp_path, url, "projects", "list"))


def test_quotas_show_defaults_and_what_is_set(tmp_path, url):
    ok(admin(tmp_path, url, "quotas", "set", "default", "instances", "10"))
    p = subprocess.run(
        [sys.executable, "-m", "occi.cli", "quotas", "show", "default"],
        cwd=tmp_path,
        env=env_for(tmp_path, OCCI_DATABASE_URL=url, OCCI_QUOTA_CORES="32"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = {line.split()[0]: line.split()[1:] for line in ok(p).splitlines()[1:]}
    assert rows["instances"] == ["10", "project"]
    assert rows["cores"] == ["32", "default", "(quota_cores)"]
    assert rows["networks"][0] == "unlimited"
    with sa.create_engine(url).connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM quotas")).scalar_one() == 1


def test_administration_needs_an_existing_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    line = assert_one_line_error(admin(tmp_path, url, "projects", "list"))
    assert "does not exist" in line

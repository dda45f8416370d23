"""The identity model on SQLite and PostgreSQL: projects, users, roles, API tokens, quotas,
password hashes, and migration 0005 giving existing entities, jobs and user mixins to the
project `default`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from occi.errors import BadRequest, Conflict, NotFound
from occi.identity.passwords import hash_password, needs_rehash, verify_password
from occi.identity.store import IdentityTx
from occi.identity.tokens import parse_token
from occi.model import Mixin
from occi.settings import Settings, SettingsError
from occi.store import make_store
from occi.store.sql import SqlStore, alembic_config
from tests.test_store import compute

DEFAULTS = Settings.load(environ={}).default_quotas()


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = make_store(db_url)
    assert isinstance(s, SqlStore)
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


def project_of(store: SqlStore, table: str, key: str, value: str) -> str:
    with store.engine.connect() as conn:
        return conn.execute(
            sa.text(f"SELECT project_id FROM {table} WHERE {key} = :v"), {"v": value}
        ).scalar_one()


# ------------------------------------------------------------------ passwords
def test_password_hash_is_argon2id_salted_and_verified():
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$v=19$m=")
    assert hash_password("correct horse") != h  # a fresh salt each time
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "correct hors")
    assert not verify_password("not a hash", "correct horse")
    assert not needs_rehash(h)
    weaker = "$argon2id$v=19$m=8,t=1,p=1$" + h.rsplit("$", 2)[1] + "$" + h.rsplit("$", 1)[1]
    assert needs_rehash(weaker)


# ------------------------------------------------------------------ migration
def test_upgrade_from_0004_gives_existing_rows_to_the_default_project(db_url):
    from alembic import command

    s = make_store(db_url)
    assert isinstance(s, SqlStore)
    try:
        with s.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0004")
            now = datetime.now(UTC)
            conn.execute(
                sa.text(
                    "INSERT INTO entities (id, kind, location, attributes, mixins, version, "
                    "created_at, updated_at) VALUES ('old', 'k', '/compute/old', '{}', '[]', 1, "
                    ":now, :now)"
                ),
                {"now": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO user_mixins (id, scheme, term, depends, applies, attributes, "
                    "created_at) VALUES ('m#old', 'm#', 'old', '[]', '[]', '[]', :now)"
                ),
                {"now": now},
            )
        with s.begin() as tx:
            tx.jobs.enqueue("old", "create", {})
        s.upgrade()
        assert project_of(s, "entities", "id", "old") == "default"
        assert project_of(s, "user_mixins", "id", "m#old") == "default"
        assert project_of(s, "jobs", "entity_id", "old") == "default"
        with s.begin(readonly=True) as tx:
            assert [p.name for p in IdentityTx(tx).projects()] == ["default"]
            assert tx.get("old") is not None
    finally:
        s.close()


def test_inserts_belong_to_the_project_they_name_else_default(store):
    with store.begin() as tx:
        ident = IdentityTx(tx)
        team = ident.create_project("team")
        tx.insert(compute("mine"), project_id=team.id)
        tx.insert(compute("theirs"))
        tx.add_user_mixin(Mixin("http://example.com/my#", "t", "T"), project_id=team.id)
        tx.jobs.enqueue("mine", "create", {}, project_id=team.id)
        tx.jobs.enqueue_many([("theirs", "create", {})])
        assert ident.owned(team.id) == {"entities": 1, "user mixins": 1, "unfinished jobs": 1}
    assert project_of(store, "entities", "id", "mine") == team.id
    assert project_of(store, "entities", "id", "theirs") == "default"
    assert project_of(store, "jobs", "entity_id", "theirs") == "default"
    with store.begin() as tx:
        with pytest.raises(Conflict, match=r"still owns 1 entities and 1 user mixins and 1 unf"):
            IdentityTx(tx).delete_project("team")
        with pytest.raises(Conflict, match="default cannot be deleted"):
            IdentityTx(tx).delete_project("default")


# ------------------------------------------------------------------ projects, users, roles
def test_projects_and_users_are_unique_by_name(store):
    with store.begin() as tx:
        ident = IdentityTx(tx)
        ident.create_project("p1")
        with pytest.raises(Conflict, match="a project named p1 exists"):
            ident.create_project("p1")
        with pytest.raises(BadRequest, match="invalid project name"):
            ident.create_project("has space")
        ident.create_user("alice", password_hash=hash_password("pw-alice-1"))
        ident.create_user("fed", oidc_issuer="https://iss", oidc_subject="s1")
        ident.create_user("cert", x509_dn="CN=cert,O=x")
        with pytest.raises(Conflict, match="a user named alice exists"):
            ident.create_user("alice")
        with pytest.raises(Conflict, match="OIDC subject s1"):
            ident.create_user("fed2", oidc_issuer="https://iss", oidc_subject="s1")
        with pytest.raises(Conflict, match="X.509 subject"):
            ident.create_user("cert2", x509_dn="CN=cert,O=x")
        with pytest.raises(BadRequest, match="both the issuer and the subject"):
            ident.create_user("half", oidc_issuer="https://iss")
        ident.create_user("fed3", oidc_issuer="https://other", oidc_subject="s1")
    with store.begin(readonly=True) as tx:
        ident = IdentityTx(tx)
        assert [u.name for u in ident.users()] == ["alice", "cert", "fed", "fed3"]
        assert ident.user_by_oidc("https://iss", "s1").name == "fed"  # type: ignore[union-attr]
        assert ident.user_by_x509("CN=cert,O=x").name == "cert"  # type: ignore[union-attr]
        alice = ident.user("alice")
        assert alice.methods == ["password"]
        assert verify_password(alice.password_hash or "", "pw-alice-1")
        with pytest.raises(NotFound, match="no user named bob"):
            ident.user("bob")


def test_roles_admin_is_global_member_and_reader_per_project(store):
    with store.begin() as tx:
        ident = IdentityTx(tx)
        ident.create_project("p1")
        ident.create_user("alice")
        assert ident.grant("alice", None, "admin")
        assert not ident.grant("alice", None, "admin")  # once
        assert ident.grant("alice", "p1", "member")
        assert not ident.grant("alice", "p1", "member")
        assert ident.grant("alice", "default", "reader")
        with pytest.raises(BadRequest, match="admin is a global role"):
            ident.grant("alice", "p1", "admin")
        with pytest.raises(BadRequest, match="held on a project"):
            ident.grant("alice", None, "reader")
        with pytest.raises(BadRequest, match="unknown role owner"):
            ident.grant("alice", "p1", "owner")
        with pytest.raises(NotFound, match="no project named p9"):
            ident.grant("alice", "p9", "member")
    with store.begin() as tx:
        ident = IdentityTx(tx)
        held = [(r.role, r.project_name) for r in ident.roles()]
        assert sorted(held, key=str) == sorted(
            [("admin", None), ("member", "p1"), ("reader", "default")], key=str
        )
        assert ident.revoke("alice", None, "admin")
        assert not ident.revoke("alice", None, "admin")
        ident.delete_project("p1")  # empty: its role assignments go with it
        assert [(r.role, r.project_name) for r in ident.roles()] == [("reader", "default")]
        ident.delete_user("alice")
        assert ident.roles() == []


def test_global_admin_row_cannot_be_doubled_in_sql(store):
    """The partial unique index, not only the code, keeps one global admin row per user."""
    with store.begin() as tx:
        IdentityTx(tx).create_user("alice")
        IdentityTx(tx).grant("alice", None, "admin")
    with pytest.raises(Conflict):
        with store.begin() as tx:
            uid = IdentityTx(tx).user("alice").id
            tx.conn.execute(
                sa.text(
                    "INSERT INTO role_assignments (user_id, project_id, role) "
                    "VALUES (:u, NULL, 'admin')"
                ),
                {"u": uid},
            )


# ------------------------------------------------------------------ tokens
def test_tokens_right_wrong_expired_revoked_disabled(store):
    with store.begin() as tx:
        ident = IdentityTx(tx)
        ident.create_user("alice")
        ident.create_project("p1")
        row, token = ident.create_token("alice", project="p1", name="ci")
        soon = datetime.now(UTC) + timedelta(days=1)
        _, expiring = ident.create_token("alice", expires_at=soon)
    assert token.startswith(f"occi_{row.id}_")
    parsed = parse_token(token)
    assert parsed is not None and len(parsed[1]) >= 43
    with store.engine.connect() as conn:  # only the hash is stored
        stored = conn.execute(sa.text("SELECT hash FROM tokens WHERE id = :i"), {"i": row.id})
        assert parsed[1] not in stored.scalar_one()
    with store.begin() as tx:
        ident = IdentityTx(tx)
        found = ident.verify_token(token)
        assert found is not None and found.user_name == "alice"
        assert found.project_name == "p1" and found.name == "ci"
        assert ident.verify_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert ident.verify_token("occi_nosuchid_" + parsed[1]) is None
        assert ident.verify_token("garbage") is None
        assert ident.verify_token(expiring) is not None
        assert ident.verify_token(expiring, now=soon + timedelta(seconds=1)) is None
        listed = {t.id: t for t in ident.tokens("alice")}
        assert listed[row.id].last_used_at is not None
        assert listed[row.id].status(datetime.now(UTC)) == "active"
        revoked = ident.revoke_token(row.id)
        assert revoked.revoked_at is not None
        assert ident.verify_token(token) is None
        with pytest.raises(NotFound):
            ident.revoke_token("nope")
    with store.begin() as tx:
        tx.conn.execute(sa.text("UPDATE users SET disabled = :t"), {"t": True})
        assert IdentityTx(tx).verify_token(expiring) is None
        IdentityTx(tx).delete_user("alice")
        assert IdentityTx(tx).tokens() == []


# ------------------------------------------------------------------ quotas
def test_quotas_default_from_settings_and_set_per_project(store):
    defaults = Settings.load(environ={"OCCI_QUOTA_CORES": "16"}).default_quotas()
    assert DEFAULTS["instances"] == -1 and defaults["cores"] == 16
    with store.begin() as tx:
        ident = IdentityTx(tx)
        ident.create_project("p1")
        ident.set_quota("p1", "instances", 5)
        ident.set_quota("p1", "instances", 7)
        ident.set_quota("p1", "networks", -1)
        with pytest.raises(BadRequest, match="unknown quota gpus"):
            ident.set_quota("p1", "gpus", 1)
        with pytest.raises(BadRequest, match="-1 \\(unlimited\\) or more"):
            ident.set_quota("p1", "cores", -2)
        shown = {q.resource: (q.limit, q.explicit) for q in ident.quotas("p1", defaults)}
    assert shown == {
        "instances": (7, True),
        "cores": (16, False),
        "memory_gb": (-1, False),
        "volumes": (-1, False),
        "storage_gb": (-1, False),
        "networks": (-1, True),
    }
    with pytest.raises(SettingsError, match="quota_volumes must be -1"):
        Settings.load(environ={"OCCI_QUOTA_VOLUMES": "-5"})


def test_downgrade_to_0004_and_back(store):
    """0005 comes off cleanly (entities kept) and goes on again."""
    from alembic import command

    with store.begin() as tx:
        tx.insert(compute("kept"))
    with store.engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
        assert "projects" not in sa.inspect(conn).get_table_names()
        assert "project_id" not in {c["name"] for c in sa.inspect(conn).get_columns("entities")}
    store.upgrade()
    assert project_of(store, "entities", "id", "kept") == "default"

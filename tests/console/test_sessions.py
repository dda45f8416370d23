"""The console's sessions in SQL, on SQLite and PostgreSQL: only the cookie value's digest is
stored, a session expires, ends at logout, follows its user's deletion, and keeps the roles a
login brought (an OIDC token's entitlements)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from occi.console.sessions import SessionStore
from occi.identity.store import IdentityTx
from occi.store import make_store


def test_sessions_live_expire_and_end(db_url):
    store = make_store(db_url)
    store.upgrade()
    try:
        with store.begin() as tx:
            ident = IdentityTx(tx)
            user = ident.create_user("sam", password_hash=None)
            team = ident.create_project("team")
        sessions = SessionStore(store)
        grants = ((team.id, "team", "member"),)
        token, made = sessions.create(user.id, team.id, grants)
        found = sessions.find(token)
        assert found is not None
        assert (found.user_name, found.project_id, found.csrf, found.grants) == (
            "sam", team.id, made.csrf, grants
        )  # fmt: skip
        with store.begin(readonly=True) as tx:
            ids = tx.conn.execute(sa.text("SELECT id FROM console_sessions")).scalars().all()
        assert ids == [made.id] and token not in ids  # the digest only
        assert sessions.find(token + "x") is None and sessions.find("") is None
        assert sessions.find("a" * 10_000) is None

        other = make_store(db_url)
        try:  # another server process sees it, and its end
            assert SessionStore(other).find(token) is not None
            sessions.set_project(made, "elsewhere")
            assert SessionStore(other).find(token).project_id == "elsewhere"
            sessions.delete(made)
            assert SessionStore(other).find(token) is None
        finally:
            other.close()

        expired_token, _ = SessionStore(store, lifetime=timedelta(seconds=-1)).create(user.id)
        assert sessions.find(expired_token) is None
        live_token, _ = sessions.create(user.id)  # a new login clears the expired rows
        with store.begin(readonly=True) as tx:
            count = tx.conn.execute(sa.text("SELECT count(*) FROM console_sessions")).scalar()
        assert count == 1
        with store.begin() as tx:
            IdentityTx(tx).delete_user("sam")
        assert sessions.find(live_token) is None
    finally:
        store.close()

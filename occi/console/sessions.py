"""The web console's sessions, kept server-side in SQL (table console_sessions): a logged-in
browser holds a random value in its cookie, the database only that value's SHA-256.

Every server process reads the same rows, so any worker answers any browser and a logout (or a
deleted user) ends the session everywhere at once. No HTTP here.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import sqlalchemy as sa

from occi.store.base import Store
from occi.store.sql import SqlTx, console_sessions, users

#: how long a session lasts after its login, whatever is done with it
LIFETIME = timedelta(hours=8)
#: longest cookie value looked up (ours are 43 characters)
MAX_TOKEN = 128


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    user_name: str
    #: the project the console acts in (None: the user's only one, or none yet)
    project_id: str | None
    #: the token every change must carry (form field or X-CSRF-Token header)
    csrf: str
    expires_at: datetime
    #: roles the login brought beside the stored ones: (project id, project name, role) each
    #: (an OIDC token's entitlements, held for the session's life)
    grants: tuple[tuple[str, str, str], ...] = ()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class SessionStore:
    """Sessions on `store` (the SQL store)."""

    def __init__(self, store: Store, lifetime: timedelta = LIFETIME):
        self.store = store
        self.lifetime = lifetime

    def _conn(self, tx: object) -> sa.Connection:
        return cast(SqlTx, tx).conn

    def create(
        self,
        user_id: str,
        project_id: str | None = None,
        grants: tuple[tuple[str, str, str], ...] = (),
    ) -> tuple[str, Session]:
        """A new session for the user: (the cookie's value, the session). Expired sessions
        of every user are deleted on the way."""
        token = secrets.token_urlsafe(32)
        now = _now()
        session_id, csrf, expires = _digest(token), secrets.token_urlsafe(32), now + self.lifetime
        with self.store.begin() as tx:
            conn = self._conn(tx)
            conn.execute(console_sessions.delete().where(console_sessions.c.expires_at < now))
            conn.execute(
                console_sessions.insert().values(
                    id=session_id,
                    user_id=user_id,
                    project_id=project_id,
                    csrf=csrf,
                    grants=json.dumps([list(g) for g in grants]) if grants else None,
                    created_at=now,
                    expires_at=expires,
                )
            )
            name = conn.execute(sa.select(users.c.name).where(users.c.id == user_id)).scalar_one()
        return token, Session(session_id, user_id, name, project_id, csrf, expires, grants)

    def find(self, token: str | None) -> Session | None:
        """The live session of a cookie's value; None when unknown, expired or malformed."""
        if not token or len(token) > MAX_TOKEN:
            return None
        t = console_sessions
        q = (
            sa.select(t, users.c.name.label("user_name"))
            .select_from(t.join(users, users.c.id == t.c.user_id))
            .where(t.c.id == _digest(token))
        )
        with self.store.begin(readonly=True) as tx:
            row = self._conn(tx).execute(q).first()
        if row is None:
            return None
        expires = row.expires_at
        if expires.tzinfo is None:  # SQLite gives naive datetimes back
            expires = expires.replace(tzinfo=UTC)
        if expires <= _now():
            return None
        grants = tuple(tuple(g) for g in json.loads(row.grants)) if row.grants else ()
        return Session(
            row.id, row.user_id, row.user_name, row.project_id, row.csrf, expires, grants
        )

    def set_project(self, session: Session, project_id: str) -> None:
        t = console_sessions
        with self.store.begin() as tx:
            self._conn(tx).execute(
                t.update().where(t.c.id == session.id).values(project_id=project_id)
            )

    def delete(self, session: Session) -> None:
        with self.store.begin() as tx:
            self._conn(tx).execute(
                console_sessions.delete().where(console_sessions.c.id == session.id)
            )

"""EC2 access keys in SQL (the ec2_credentials table): each a user's, acting in one project,
its secret stored encrypted with the server's key; and the look-up a SigV4 request is checked
with (the key, its secret and the roles its user holds now), in a transaction of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa

from occi.errors import NotFound
from occi.identity.grants import principal_of
from occi.identity.store import IdentityTx
from occi.inventory.secrets import Cipher
from occi.store.base import Store
from occi.store.ec2_sql import ec2_credentials
from occi.store.sql import SqlTx, projects, users


@dataclass(frozen=True)
class AccessKey:
    access_key: str
    user_id: str
    user_name: str
    project_id: str
    project_name: str
    created_at: datetime
    disabled: bool = False


@dataclass(frozen=True)
class Found:
    """What checking a request signed with an access key needs: the key, its secret, and the
    roles its user holds on its project now."""

    key: AccessKey
    secret: str
    roles: frozenset[str]


def _select() -> sa.Select[Any]:
    c = ec2_credentials
    return sa.select(
        c.c.access_key,
        c.c.user_id,
        users.c.name.label("user_name"),
        users.c.disabled,
        c.c.project_id,
        projects.c.name.label("project_name"),
        c.c.created_at,
        c.c.secret,
    ).select_from(c.join(users, users.c.id == c.c.user_id).join(projects))


def _key(row: Any) -> AccessKey:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return AccessKey(
        row.access_key,
        row.user_id,
        row.user_name,
        row.project_id,
        row.project_name,
        created,
        bool(row.disabled),
    )


def add(
    ident: IdentityTx, access_key: str, encrypted_secret: str, user: str, project: str
) -> AccessKey:
    """Store a new access key of `user` acting in `project` (names)."""
    owner, scope = ident.user(user), ident.project(project)
    now = datetime.now(UTC)
    ident.conn.execute(
        ec2_credentials.insert().values(
            access_key=access_key,
            user_id=owner.id,
            project_id=scope.id,
            secret=encrypted_secret,
            created_at=now,
        )
    )
    return AccessKey(access_key, owner.id, owner.name, scope.id, scope.name, now)


def listed(ident: IdentityTx, user: str | None = None) -> list[AccessKey]:
    """Every access key, or one user's (never their secrets)."""
    q = _select().order_by(users.c.name, ec2_credentials.c.created_at)
    if user is not None:
        q = q.where(ec2_credentials.c.user_id == ident.user(user).id)
    return [_key(r) for r in ident.conn.execute(q)]


def delete(ident: IdentityTx, access_key: str) -> None:
    gone = ident.conn.execute(
        ec2_credentials.delete().where(ec2_credentials.c.access_key == access_key)
    ).rowcount
    if not gone:
        raise NotFound(f"no EC2 access key {access_key}")


def roles(ident: IdentityTx, key: AccessKey) -> frozenset[str]:
    """The roles the key's user holds on its project now (plus admin when global admin)."""
    p = principal_of(key.user_id, key.user_name, "ec2", ident.roles(key.user_id))
    held = {p.roles[key.project_id][1]} if key.project_id in p.roles else set()
    if p.admin:
        held.add("admin")
    return frozenset(held)


def lookup(store: Store, cipher: Cipher, access_key: str) -> Found | None:
    """The access key, its secret and its user's roles, or None when it does not exist."""
    with store.begin(readonly=True) as tx:
        ident = IdentityTx(cast(SqlTx, tx))
        row = ident.conn.execute(_select().where(ec2_credentials.c.access_key == access_key))
        found = row.first()
        if found is None:
            return None
        key = _key(found)
        secret = cipher.decrypt(found.secret, f"the EC2 access key {access_key}")["secret"]
        return Found(key, secret, roles(ident, key))

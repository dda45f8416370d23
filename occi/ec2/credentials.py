"""EC2 access keys: made for a user acting in one project, the secret shown once and stored
encrypted with the server's key (occi.inventory.secrets.Cipher), because the server must sign
each request again to check it. Works on the connection of a store transaction (SQL only).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from occi.errors import NotFound
from occi.identity.grants import principal_of
from occi.identity.store import IdentityTx
from occi.inventory.secrets import Cipher
from occi.store.ec2_sql import ec2_credentials
from occi.store.sql import projects, users

#: access key ids: this prefix and 16 upper-case letters and digits, as AWS's look
PREFIX = "OCCI"
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class AccessKey:
    access_key: str
    user_id: str
    user_name: str
    project_id: str
    project_name: str
    created_at: datetime
    disabled: bool = False


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


def create(ident: IdentityTx, cipher: Cipher, user: str, project: str) -> tuple[AccessKey, str]:
    """A new access key of `user` acting in `project` (names); returns it and its secret,
    which is shown once."""
    owner, scope = ident.user(user), ident.project(project)
    access_key = PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(16))
    # 40 letters and digits (about 238 bits): as long as AWS's, and nothing a shell or a
    # script parsing the output has to quote
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    now = datetime.now(UTC)
    ident.conn.execute(
        ec2_credentials.insert().values(
            access_key=access_key,
            user_id=owner.id,
            project_id=scope.id,
            secret=cipher.encrypt({"secret": secret}),
            created_at=now,
        )
    )
    return AccessKey(access_key, owner.id, owner.name, scope.id, scope.name, now), secret


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


def lookup(conn: Connection, cipher: Cipher, access_key: str) -> tuple[AccessKey, str] | None:
    """The access key and its secret, or None when it does not exist."""
    row = conn.execute(_select().where(ec2_credentials.c.access_key == access_key)).first()
    if row is None:
        return None
    secret = cipher.decrypt(row.secret, f"the EC2 access key {access_key}")["secret"]
    return _key(row), secret


def roles(ident: IdentityTx, key: AccessKey) -> frozenset[str]:
    """The roles the key's user holds on its project now (plus admin when global admin)."""
    p = principal_of(key.user_id, key.user_name, "ec2", ident.roles(key.user_id))
    held = {p.roles[key.project_id][1]} if key.project_id in p.roles else set()
    if p.admin:
        held.add("admin")
    return frozenset(held)

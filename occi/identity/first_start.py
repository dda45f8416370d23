"""The first start: on a database without any user, make the users one needs to begin.

`occi-server serve` calls `first_start` once, before gunicorn forks its workers. On a database
with no users at all (and authentication on) it creates, in one transaction, user `admin` (the
global admin role), project `demo` and user `demo` (member of demo), with random passwords, and
writes those passwords once to the credentials file: created exclusively (O_EXCL), readable by
its owner only (0600). The log says where the file is, never what it holds.

Several servers starting together on one database: the `users.name` unique constraint lets one
create `admin`; the others' transactions fail there and roll back, and they do nothing. If the
file cannot be written (it exists already, from an earlier database), nothing is created and the
start fails with a message saying what to do: passwords nobody can read are worth nothing.

The file is a shell fragment (`. ./occi-credentials` sets the variables, none exported):

    OCCI_ADMIN_USER=admin
    OCCI_ADMIN_PASSWORD=...
    OCCI_DEMO_USER=demo
    OCCI_DEMO_PASSWORD=...
    OCCI_DEMO_PROJECT=demo
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from occi.errors import Conflict, NotFound
from occi.settings import Settings

log = logging.getLogger(__name__)

ADMIN_USER = "admin"
DEMO_USER = "demo"
DEMO_PROJECT = "demo"
#: the credentials file's name beside a SQLite database (or in the working directory)
FILE_NAME = "occi-credentials"


class FirstStartError(Exception):
    """The first start cannot keep the passwords it would make: nothing was created."""


@dataclass(frozen=True)
class Credentials:
    path: Path
    admin_password: str
    demo_password: str


def credentials_path(settings: Settings) -> Path:
    """Where the first start writes the passwords: the `credentials_file` setting, else beside
    the SQLite database file, else (PostgreSQL, an in-memory database) the working directory."""
    if settings.credentials_file:
        return Path(settings.credentials_file).expanduser()
    return beside_database(settings.database_url, FILE_NAME)


def beside_database(database_url: str, name: str) -> Path:
    """The file `name` beside the SQLite database file, else (PostgreSQL, an in-memory
    database) in the working directory: where the server's own files go by default."""
    url = sa.engine.make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
        if not database.startswith("file:"):
            return Path(database).expanduser().resolve().parent / name
    return Path.cwd() / name


def _text(c: Credentials, settings: Settings) -> str:
    url = sa.engine.make_url(settings.database_url).render_as_string(hide_password=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"# occi-server's first start on {when} made these users in {url}.\n"
        "# Their passwords are written here once and nowhere else: keep this file private.\n"
        "# From a shell:  . ./occi-credentials\n"
        '#   curl -u "demo:$OCCI_DEMO_PASSWORD" http://127.0.0.1:8080/-/\n'
        "# Nothing reads this file again: move the passwords to a safer place if you like.\n"
        f"OCCI_ADMIN_USER={ADMIN_USER}\n"
        f"OCCI_ADMIN_PASSWORD={c.admin_password}\n"
        f"OCCI_DEMO_USER={DEMO_USER}\n"
        f"OCCI_DEMO_PASSWORD={c.demo_password}\n"
        f"OCCI_DEMO_PROJECT={DEMO_PROJECT}\n"
    )


def _write_exclusive(path: Path, text: str) -> None:
    """Create `path` for its owner only; FileExistsError if it is there already."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def first_start(settings: Settings) -> Credentials | None:
    """Create admin, demo and project demo on a database without users, and the credentials
    file; None when there was nothing to do (users exist, another server did it, or `auth` is
    none). Raises FirstStartError when the file cannot be made (nothing is created then)."""
    if "none" in settings.auth_methods():
        return None
    from occi.identity.model import ADMIN, MEMBER
    from occi.identity.passwords import hash_password
    from occi.identity.store import IdentityTx
    from occi.store.sql import SqlStore, users

    store = SqlStore(settings.database_url)
    path = credentials_path(settings)
    made: Credentials | None = None
    try:
        with store.begin() as tx:
            if tx.conn.execute(sa.select(users.c.id).limit(1)).first() is not None:
                return None
            c = Credentials(path, secrets.token_urlsafe(18), secrets.token_urlsafe(18))
            ident = IdentityTx(tx)
            # the admin row first: a server racing this one stops at its unique name
            ident.create_user(ADMIN_USER, password_hash=hash_password(c.admin_password))
            ident.grant(ADMIN_USER, None, ADMIN)
            try:
                ident.project(DEMO_PROJECT)
            except NotFound:
                ident.create_project(DEMO_PROJECT)
            ident.create_user(DEMO_USER, password_hash=hash_password(c.demo_password))
            ident.grant(DEMO_USER, DEMO_PROJECT, MEMBER)
            try:
                _write_exclusive(path, _text(c, settings))
            except FileExistsError:
                raise FirstStartError(
                    f"the database has no users, but the credentials file {path} exists "
                    "already (from an earlier database?): move it away and start again, or set "
                    "credentials_file to another path"
                ) from None
            except OSError as exc:
                raise FirstStartError(
                    f"cannot write the credentials file {path}: {exc.strerror or exc} "
                    "(set credentials_file to a writable path)"
                ) from None
            made = c
    except Conflict:
        if made is not None:  # our commit failed after the file was written: take it back
            path.unlink(missing_ok=True)
            raise
        log.info("another server made the first users: nothing to do")
        return None
    except BaseException:
        if made is not None:
            path.unlink(missing_ok=True)
        raise
    finally:
        store.close()
    log.warning(
        "first start: made users %s (global admin) and %s (member of project %s); their "
        "passwords are in %s (readable by its owner only)",
        ADMIN_USER,
        DEMO_USER,
        DEMO_PROJECT,
        path,
    )
    return made

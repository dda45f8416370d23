"""Projects, users, role assignments, API tokens and quotas in SQL, inside a store transaction.

`IdentityTx(tx)` works on the connection of an occi.store.sql transaction (as the job queue
does), on the tables occi.store.sql defines and migration 0005 creates. Raises the errors of
occi.errors: NotFound for an unknown name, Conflict for a taken one or a refused deletion,
BadRequest for a malformed name, role or limit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from occi.errors import BadRequest, Conflict, NotFound
from occi.identity import tokens as secrets
from occi.identity.model import (
    ADMIN,
    QUOTA_RESOURCES,
    ROLES,
    UNLIMITED,
    Project,
    Quota,
    RoleAssignment,
    Token,
    User,
)
from occi.store.jobs_sql import UNFINISHED
from occi.store.sql import (
    DEFAULT_PROJECT,
    SqlTx,
    entities,
    jobs,
    projects,
    quotas,
    role_assignments,
    tokens,
    user_mixins,
    users,
)

#: project and user names: what a shell, a URL and a log line carry without quoting
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes: they were stored in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def check_name(what: str, name: str) -> str:
    if not NAME.fullmatch(name):
        raise BadRequest(
            f"invalid {what} name {name!r}: up to 64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def _project(row: Row[Any]) -> Project:
    created = _aware(row.created_at)
    assert created is not None
    return Project(id=row.id, name=row.name, created_at=created)


def _user(row: Row[Any]) -> User:
    created = _aware(row.created_at)
    assert created is not None
    return User(
        id=row.id,
        name=row.name,
        created_at=created,
        password_hash=row.password_hash,
        oidc_issuer=row.oidc_issuer,
        oidc_subject=row.oidc_subject,
        x509_dn=row.x509_dn,
        disabled=bool(row.disabled),
    )


class IdentityTx:
    """The identity tables inside one store transaction (occi.store.sql.SqlTx)."""

    def __init__(self, tx: SqlTx):
        self.conn = tx.conn

    def _insert(self, table: sa.Table, values: dict[str, Any]) -> bool:
        """Insert one row; False when a unique constraint refused it (the transaction lives)."""
        try:
            with self.conn.begin_nested():
                self.conn.execute(table.insert().values(**values))
        except IntegrityError:
            return False
        return True

    # ------------------------------------------------------------------ projects
    def create_project(self, name: str) -> Project:
        check_name("project", name)
        project = Project(id=uuid.uuid4().hex, name=name, created_at=_now())
        values = {"id": project.id, "name": name, "created_at": project.created_at}
        if not self._insert(projects, values):
            raise Conflict(f"a project named {name} exists already")
        return project

    def projects(self) -> list[Project]:
        rows = self.conn.execute(sa.select(projects).order_by(projects.c.name))
        return [_project(r) for r in rows]

    def project(self, name: str) -> Project:
        """The project of this name; NotFound otherwise."""
        row = self.conn.execute(sa.select(projects).where(projects.c.name == name)).first()
        if row is None:
            raise NotFound(f"no project named {name}")
        return _project(row)

    def find_project(self, name_or_id: str) -> Project | None:
        """The project of this name, else of this id, else None (X-OCCI-Project takes either)."""
        for column in (projects.c.name, projects.c.id):
            row = self.conn.execute(sa.select(projects).where(column == name_or_id)).first()
            if row is not None:
                return _project(row)
        return None

    def owned(self, project_id: str) -> dict[str, int]:
        """What the project still owns: entities, user mixins, unfinished jobs."""
        counts = {}
        for what, table, extra in (
            ("entities", entities, None),
            ("user mixins", user_mixins, None),
            ("unfinished jobs", jobs, jobs.c.status.in_(UNFINISHED)),
        ):
            q = sa.select(sa.func.count()).select_from(table)
            q = q.where(table.c.project_id == project_id)
            if extra is not None:
                q = q.where(extra)
            counts[what] = int(self.conn.execute(q).scalar_one())
        return counts

    def delete_project(self, name: str) -> None:
        """Delete an empty project with its role assignments, tokens, quotas and finished jobs.
        Conflict for `default` and for a project that still owns something."""
        project = self.project(name)
        if project.id == DEFAULT_PROJECT:
            raise Conflict(
                "the project default cannot be deleted: it owns what is stored without a project"
            )
        left = {what: n for what, n in self.owned(project.id).items() if n}
        if left:
            listed = " and ".join(f"{n} {what}" for what, n in left.items())
            raise Conflict(f"the project {name} still owns {listed}: delete them first")
        self.conn.execute(jobs.delete().where(jobs.c.project_id == project.id))
        # role assignments, tokens and quotas go with it (ON DELETE CASCADE)
        self.conn.execute(projects.delete().where(projects.c.id == project.id))

    # ------------------------------------------------------------------ users
    def create_user(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        oidc_issuer: str | None = None,
        oidc_subject: str | None = None,
        x509_dn: str | None = None,
    ) -> User:
        check_name("user", name)
        if (oidc_issuer is None) != (oidc_subject is None):
            raise BadRequest("an OIDC identity needs both the issuer and the subject")
        values = {
            "id": uuid.uuid4().hex,
            "name": name,
            "password_hash": password_hash,
            "oidc_issuer": oidc_issuer,
            "oidc_subject": oidc_subject,
            "x509_dn": x509_dn,
            "disabled": False,
            "created_at": _now(),
        }
        if self._insert(users, values):
            return User(**values)  # type: ignore[arg-type]
        if self._find_user(users.c.name == name) is not None:
            raise Conflict(f"a user named {name} exists already")
        if x509_dn is not None and self.user_by_x509(x509_dn) is not None:
            raise Conflict(f"another user has the X.509 subject {x509_dn}")
        raise Conflict(f"another user has the OIDC subject {oidc_subject} of {oidc_issuer}")

    def _find_user(self, where: sa.ColumnElement[bool]) -> User | None:
        row = self.conn.execute(sa.select(users).where(where)).first()
        return _user(row) if row else None

    def users(self) -> list[User]:
        return [_user(r) for r in self.conn.execute(sa.select(users).order_by(users.c.name))]

    def user(self, name: str) -> User:
        """The user of this name; NotFound otherwise."""
        found = self._find_user(users.c.name == name)
        if found is None:
            raise NotFound(f"no user named {name}")
        return found

    def user_by_oidc(self, issuer: str, subject: str) -> User | None:
        return self._find_user(
            sa.and_(users.c.oidc_issuer == issuer, users.c.oidc_subject == subject)
        )

    def user_by_x509(self, dn: str) -> User | None:
        return self._find_user(users.c.x509_dn == dn)

    def set_password(self, name: str, password_hash: str | None) -> None:
        user = self.user(name)
        self.conn.execute(
            users.update().where(users.c.id == user.id).values(password_hash=password_hash)
        )

    def delete_user(self, name: str) -> None:
        """Delete the user with their role assignments and tokens."""
        user = self.user(name)
        self.conn.execute(users.delete().where(users.c.id == user.id))

    # ------------------------------------------------------------------ roles
    def _scope(self, project: str | None, role: str) -> str | None:
        """The project id a role is held on: None for admin, a project's for the others."""
        if role not in ROLES:
            raise BadRequest(f"unknown role {role}: the roles are {', '.join(ROLES)}")
        if role == ADMIN:
            if project is not None:
                raise BadRequest("admin is a global role: it is held on every project, not one")
            return None
        if project is None:
            raise BadRequest(f"the role {role} is held on a project: name one")
        return self.project(project).id

    def grant(self, user: str, project: str | None, role: str) -> bool:
        """Give the role (project None for admin); False when the user had it already."""
        user_id = self.user(user).id
        project_id = self._scope(project, role)
        values = {"user_id": user_id, "project_id": project_id, "role": role}
        return self._insert(role_assignments, values)

    def revoke(self, user: str, project: str | None, role: str) -> bool:
        """Take the role away; False when the user did not have it."""
        user_id = self.user(user).id
        project_id = self._scope(project, role)
        t = role_assignments
        where = t.c.project_id.is_(None) if project_id is None else t.c.project_id == project_id
        result = self.conn.execute(
            t.delete().where(t.c.user_id == user_id, t.c.role == role, where)
        )
        return bool(result.rowcount)

    def roles(self, user_id: str | None = None) -> list[RoleAssignment]:
        """Every role assignment, or one user's, by user then project name (admin first)."""
        t = role_assignments
        q = (
            sa.select(t.c.user_id, users.c.name.label("user_name"), t.c.role, t.c.project_id)
            .add_columns(projects.c.name.label("project_name"))
            .select_from(t.join(users, users.c.id == t.c.user_id).outerjoin(projects))
            .order_by(users.c.name, projects.c.name.nulls_first(), t.c.role)
        )
        if user_id is not None:
            q = q.where(t.c.user_id == user_id)
        return [
            RoleAssignment(r.user_id, r.user_name, r.role, r.project_id, r.project_name)
            for r in self.conn.execute(q)
        ]

    # ------------------------------------------------------------------ tokens
    def create_token(
        self,
        user: str,
        *,
        project: str | None = None,
        name: str | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[Token, str]:
        """A new token for the user (scoped to one project, or None: any project the user has
        a role on). Returns its row and the token itself, which nothing keeps."""
        owner = self.user(user)
        scope = self.project(project) if project is not None else None
        made = secrets.make_token()
        now = _now()
        self.conn.execute(
            tokens.insert().values(
                id=made.id,
                user_id=owner.id,
                project_id=scope.id if scope else None,
                hash=made.hash,
                name=name,
                created_at=now,
                expires_at=expires_at,
            )
        )
        token = Token(
            id=made.id,
            user_id=owner.id,
            user_name=owner.name,
            created_at=now,
            project_id=scope.id if scope else None,
            project_name=scope.name if scope else None,
            name=name,
            expires_at=expires_at,
        )
        return token, made.token

    def _token_select(self) -> sa.Select[Any]:
        return (
            sa.select(tokens, users.c.name.label("user_name"), users.c.disabled)
            .add_columns(projects.c.name.label("project_name"))
            .select_from(
                tokens.join(users, users.c.id == tokens.c.user_id).outerjoin(
                    projects, projects.c.id == tokens.c.project_id
                )
            )
        )

    @staticmethod
    def _token(row: Row[Any]) -> Token:
        created = _aware(row.created_at)
        assert created is not None
        return Token(
            id=row.id,
            user_id=row.user_id,
            user_name=row.user_name,
            created_at=created,
            project_id=row.project_id,
            project_name=row.project_name,
            name=row.name,
            expires_at=_aware(row.expires_at),
            revoked_at=_aware(row.revoked_at),
            last_used_at=_aware(row.last_used_at),
        )

    def tokens(self, user: str | None = None) -> list[Token]:
        """Every token, or one user's (never their secrets: nothing has them)."""
        q = self._token_select().order_by(users.c.name, tokens.c.created_at, tokens.c.id)
        if user is not None:
            q = q.where(tokens.c.user_id == self.user(user).id)
        return [self._token(r) for r in self.conn.execute(q)]

    def revoke_token(self, token_id: str) -> Token:
        """Revoke the token (revoking twice keeps the first time); NotFound for an unknown id."""
        self.conn.execute(
            tokens.update()
            .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
        row = self.conn.execute(self._token_select().where(tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"no token with the id {token_id}")
        return self._token(row)

    def verify_token(self, token: str, now: datetime | None = None) -> Token | None:
        """The token's row when the token is right, unexpired, unrevoked and its user enabled
        (its last use is recorded); None otherwise, whatever the reason."""
        parsed = secrets.parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        row = self.conn.execute(self._token_select().where(tokens.c.id == token_id)).first()
        if row is None or not secrets.secret_matches(row.hash, secret):
            return None
        now = now or _now()
        found = self._token(row)
        if row.disabled or found.status(now) != "active":
            return None
        self.conn.execute(tokens.update().where(tokens.c.id == token_id).values(last_used_at=now))
        return found

    # ------------------------------------------------------------------ quotas
    def quotas(self, project: str, defaults: Mapping[str, int]) -> list[Quota]:
        """The project's limit on each resource: its own where set, else the default."""
        project_id = self.project(project).id
        rows = self.conn.execute(
            sa.select(quotas.c.resource, quotas.c["limit"]).where(quotas.c.project_id == project_id)
        )
        own = {r.resource: r._mapping["limit"] for r in rows}
        return [
            Quota(project_id, res, own.get(res, defaults.get(res, UNLIMITED)), res in own)
            for res in QUOTA_RESOURCES
        ]

    def set_quota(self, project: str, resource: str, limit: int) -> None:
        if resource not in QUOTA_RESOURCES:
            raise BadRequest(
                f"unknown quota {resource}: the quotas are {', '.join(QUOTA_RESOURCES)}"
            )
        if limit < UNLIMITED:
            raise BadRequest(f"a quota is -1 (unlimited) or more, not {limit}")
        project_id = self.project(project).id
        where = sa.and_(quotas.c.project_id == project_id, quotas.c.resource == resource)
        changed = self.conn.execute(quotas.update().where(where).values({"limit": limit}))
        if not changed.rowcount:
            self.conn.execute(
                quotas.insert().values(
                    {"project_id": project_id, "resource": resource, "limit": limit}
                )
            )

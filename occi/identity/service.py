"""The administration of identities for the fronts that are not the command line (the web
console): projects, users, role assignments and quotas, for administrators only, and the audit
log, which a project's members and readers see for their project.

Every call takes a RequestContext first; the command line (occi.cli_identity) is the server's
own work and works on the tables directly. Errors are occi.errors; no HTTP here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import cast

from occi import errors
from occi.context import RequestContext
from occi.identity import audit, passwords
from occi.identity.model import Project, Quota, RoleAssignment, User
from occi.identity.store import IdentityTx
from occi.store.base import Store
from occi.store.sql import SqlTx

#: the most events one read returns
MAX_EVENTS = 500
#: shortest password an administrator may set
MIN_PASSWORD = 8
#: longest password accepted (argon2 hashes any length; a bound keeps the work bounded)
MAX_PASSWORD = 1024


class IdentityService:
    """Projects, users, roles and quotas on `store`; `default_quotas` are the quota_*
    settings (a project's limit where it has none of its own)."""

    def __init__(self, store: Store, default_quotas: Mapping[str, int] | None = None):
        self.store = store
        self.default_quotas = dict(default_quotas or {})

    @contextmanager
    def _admin(self, ctx: RequestContext, readonly: bool = False) -> Iterator[IdentityTx]:
        if not ctx.is_admin:
            raise errors.Forbidden(
                "only administrators manage projects, users, roles and quotas", code="admin_only"
            )
        with self.store.begin(readonly=readonly) as tx:
            yield IdentityTx(cast(SqlTx, tx))

    # ------------------------------------------------------------------ projects
    def projects(self, ctx: RequestContext) -> list[Project]:
        with self._admin(ctx, readonly=True) as ident:
            return ident.projects()

    def create_project(self, ctx: RequestContext, name: str) -> Project:
        with self._admin(ctx) as ident:
            return ident.create_project(name.strip())

    def delete_project(self, ctx: RequestContext, name: str) -> None:
        with self._admin(ctx) as ident:
            ident.delete_project(name)

    # ------------------------------------------------------------------ users
    def users(self, ctx: RequestContext) -> list[User]:
        with self._admin(ctx, readonly=True) as ident:
            return ident.users()

    def create_user(self, ctx: RequestContext, name: str, password: str) -> User:
        check_password(password)
        hashed = passwords.hash_password(password)
        with self._admin(ctx) as ident:
            return ident.create_user(name.strip(), password_hash=hashed)

    def set_password(self, ctx: RequestContext, name: str, password: str) -> None:
        check_password(password)
        hashed = passwords.hash_password(password)
        with self._admin(ctx) as ident:
            ident.set_password(name, hashed)

    def delete_user(self, ctx: RequestContext, name: str) -> None:
        if name == ctx.user:
            raise errors.Conflict("you cannot delete yourself: another administrator can")
        with self._admin(ctx) as ident:
            ident.delete_user(name)

    # ------------------------------------------------------------------ roles
    def roles(self, ctx: RequestContext) -> list[RoleAssignment]:
        with self._admin(ctx, readonly=True) as ident:
            return ident.roles()

    def grant(self, ctx: RequestContext, user: str, project: str | None, role: str) -> bool:
        with self._admin(ctx) as ident:
            return ident.grant(user, project or None, role)

    def revoke(self, ctx: RequestContext, user: str, project: str | None, role: str) -> bool:
        with self._admin(ctx) as ident:
            return ident.revoke(user, project or None, role)

    # ------------------------------------------------------------------ quotas
    def quotas(self, ctx: RequestContext, project: str) -> list[Quota]:
        with self._admin(ctx, readonly=True) as ident:
            return ident.quotas(project, self.default_quotas)

    def set_quota(self, ctx: RequestContext, project: str, resource: str, limit: int) -> None:
        with self._admin(ctx) as ident:
            ident.set_quota(project, resource, limit)

    # ------------------------------------------------------------------ the audit log
    def events(self, ctx: RequestContext, limit: int = 100) -> list[audit.Event]:
        """The newest events: every project's for an administrator, else the project's of
        the context (which needs a role there)."""
        limit = max(1, min(limit, MAX_EVENTS))
        if ctx.is_admin:
            return audit.events(self.store, limit=limit)
        if not ctx.can_read or ctx.project is None:
            raise errors.Forbidden(
                "you hold no role in this project, so you cannot read its events", code="no_role"
            )
        return audit.events(self.store, project=ctx.project, limit=limit)


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise errors.BadRequest(
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters", code="bad_password"
        )

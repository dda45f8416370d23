"""From a verified user to their Principal: the roles stored for them, plus any a method adds.

Shared by every method (basic and token in occi.identity.authn; OIDC adds the roles its
token's entitlements grant; X.509 adds none). No HTTP here.
"""

from __future__ import annotations

from collections.abc import Iterable

from occi.identity.model import ADMIN, MEMBER, RoleAssignment, User
from occi.identity.principal import AuthFailed, Principal
from occi.identity.store import IdentityTx


def merge_role(
    roles: dict[str, tuple[str, str]], project_id: str, project_name: str, role: str
) -> None:
    """Record a project role; member wins over reader when both are held."""
    held = roles.get(project_id)
    if held is None or (held[1] != MEMBER and role == MEMBER):
        roles[project_id] = (project_name, role)


def principal_of(
    user_id: str,
    name: str,
    method: str,
    assignments: Iterable[RoleAssignment],
    scope: str | None = None,
    more: Iterable[tuple[str, str, str]] = (),
) -> Principal:
    """A Principal from a user's role assignments plus `more` ((project id, project name,
    role) each); member wins over reader on one project."""
    admin = False
    roles: dict[str, tuple[str, str]] = {}
    for a in assignments:
        if a.role == ADMIN and a.project_id is None:
            admin = True
        elif a.project_id is not None:
            merge_role(roles, a.project_id, a.project_name or a.project_id, a.role)
    for project_id, project_name, role in more:
        merge_role(roles, project_id, project_name, role)
    return Principal(user_id, name, method, admin=admin, roles=roles, scope=scope)


def principal_for(
    ident: IdentityTx,
    user: User,
    method: str,
    more: Iterable[tuple[str, str, str]] = (),
) -> Principal:
    """The Principal of an enabled user: their stored role assignments plus `more`
    ((project id, project name, role) each). AuthFailed for a disabled user."""
    if user.disabled:
        raise AuthFailed(f"the user {user.name} is disabled", user=user.name)
    return principal_of(user.id, user.name, method, ident.roles(user.id), more=more)

"""The request context: who asks the service for what (user, project, roles, request id).

Every public service call takes one first. A front makes it once per request, from the
credentials the authentication middleware verified (occi.api.auth); internal work (jobs,
reconciliation, the command line) makes a system context. The service decides what a context may
do (occi.service.base.ServiceBase._authorize): `roles` are the roles the user holds on `project`,
plus `admin` for a global administrator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

#: the project an anonymous request works in until identities exist: the one project every
#: entity stored so far belongs to
DEFAULT_PROJECT = "default"
#: the role of the server's own work (jobs, reconciliation, administration from the command line)
SYSTEM_ROLE = "system"
#: the roles of occi.identity.model, repeated here so the context imports nothing
ADMIN_ROLE, MEMBER_ROLE, READER_ROLE = "admin", "member", "reader"


def new_request_id() -> str:
    """32 random hex digits, as the HTTP layer makes for a request that brings none."""
    return os.urandom(16).hex()


class AuditSlot:
    """Where the service notes the audit event it recorded with a request's own work: the
    status it recorded, for the answer that status stands for (occi.api.audit then records
    no second event). A front opts in per request (occi.api.app); None: not recorded."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status: int | None = None


@dataclass(frozen=True)
class RequestContext:
    """Who is asking (`user`, None when anonymous), for which `project` (None: every project,
    for system work), with which `roles`, under which `request_id` (in logs and job rows)."""

    #: the user's name; None for system work and for a server without authentication
    user: str | None
    #: the project's id (`default` for the project of that name)
    project: str | None
    roles: frozenset[str] = frozenset()
    request_id: str = field(default_factory=new_request_id)
    #: the project's name, for messages and the audit log (its id when not given)
    project_name: str | None = None
    #: set by a front that lets the service record the request's audit event with its work
    audit: AuditSlot | None = field(default=None, compare=False)

    @classmethod
    def system(cls, request_id: str | None = None) -> RequestContext:
        """The server's own work: jobs, reconciliation, the command line. Every project."""
        return cls(None, None, frozenset({SYSTEM_ROLE}), request_id or new_request_id())

    @classmethod
    def anonymous(
        cls, request_id: str | None = None, project: str = DEFAULT_PROJECT
    ) -> RequestContext:
        """A request nobody authenticated (development, before identities exist): no user, the
        default project, no roles."""
        return cls(None, project, frozenset(), request_id or new_request_id())

    @classmethod
    def unauthenticated(
        cls, project: str = DEFAULT_PROJECT, request_id: str | None = None
    ) -> RequestContext:
        """A request on a server without authentication (auth = none): nobody, acting as a
        member of one project."""
        return cls(None, project, frozenset({MEMBER_ROLE}), request_id or new_request_id())

    @property
    def is_system(self) -> bool:
        return SYSTEM_ROLE in self.roles

    @property
    def is_admin(self) -> bool:
        """The server's own work or a global administrator: every project, every operation."""
        return SYSTEM_ROLE in self.roles or ADMIN_ROLE in self.roles

    @property
    def can_read(self) -> bool:
        return self.is_admin or MEMBER_ROLE in self.roles or READER_ROLE in self.roles

    @property
    def can_write(self) -> bool:
        return self.is_admin or MEMBER_ROLE in self.roles

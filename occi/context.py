"""The request context: who asks the service for what (user, project, roles, request id).

Every public service call takes one first. A front makes it once per request (today the OCCI
front, from the request id, for anonymous development use); internal work (jobs, reconciliation,
the command line) makes a system context. Identity and authorization come in a later step: the
context is carried down to where the service will decide (occi.service.base.ServiceBase._authorize).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

#: the project an anonymous request works in until identities exist: the one project every
#: entity stored so far belongs to
DEFAULT_PROJECT = "default"
#: the role of the server's own work (jobs, reconciliation, administration from the command line)
SYSTEM_ROLE = "system"


def new_request_id() -> str:
    """32 random hex digits, as the HTTP layer makes for a request that brings none."""
    return os.urandom(16).hex()


@dataclass(frozen=True)
class RequestContext:
    """Who is asking (`user`, None when anonymous), for which `project` (None: every project,
    for system work), with which `roles`, under which `request_id` (in logs and job rows)."""

    user: str | None
    project: str | None
    roles: frozenset[str] = frozenset()
    request_id: str = field(default_factory=new_request_id)

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

    @property
    def is_system(self) -> bool:
        return SYSTEM_ROLE in self.roles

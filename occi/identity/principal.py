"""Who a verified credential belongs to, and the contract every authentication method keeps.

Pure data and protocols: no SQL, no HTTP framework. The methods live beside this module (basic
and token in occi.identity.authn, OIDC in occi.identity.oidc, X.509 in occi.identity.x509); the
HTTP middleware (occi.api.auth) asks each enabled method in turn and turns the Principal it gets
into the request's occi.context.RequestContext.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from occi.store.base import Store


@dataclass(frozen=True)
class Principal:
    """A user whose credentials were verified, with every role they hold."""

    user_id: str
    name: str
    #: the method that verified them: basic, token, oidc, x509
    method: str
    #: holds the global admin role (every project, the administration of the cloud)
    admin: bool = False
    #: project id -> (project name, role) for each project the user holds a role on
    #: (member wins over reader when both are held)
    roles: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    #: a token scoped to one project (its id) may act in that project only
    scope: str | None = None


class AuthFailed(Exception):
    """Credentials were presented and are wrong (unknown user, bad password, bad signature,
    expired, revoked, untrusted proxy...). `reason` is for the log, never for the client;
    `user` is the user name the client claimed, when there is one (for throttling)."""

    def __init__(self, reason: str, user: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.user = user


@dataclass(frozen=True)
class Presented:
    """Credentials one method found in a request, before they are verified.

    `key` identifies them in the per-process cache of verified credentials: a digest of the
    whole secret (never the secret itself), so a changed secret is a different entry."""

    method: str
    key: str
    #: the user name the client claims (Basic), for throttling and the log; None when unknown
    user: str | None
    #: whatever the method needs to verify them (a password, a token, a JWT, a DN)
    secret: object


class AuthMethod(Protocol):
    """One way of proving who one is. `find` is cheap and touches nothing shared; `verify`
    may read the database or the network, and its result is cached for `auth_cache_seconds`."""

    name: str

    def challenge(self) -> str:
        """The WWW-Authenticate value offering this method (`Basic realm="occi"`)."""
        ...

    def find(self, headers: Mapping[str, str], remote_addr: str) -> Presented | None:
        """The credentials of this method in the request (header names lower-case), or None
        when the request brings none of this kind. Raises AuthFailed for malformed ones."""
        ...

    def verify(self, presented: Presented, store: Store) -> Principal:
        """The principal the credentials prove; raises AuthFailed when they prove nothing."""
        ...

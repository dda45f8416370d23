"""Authentication: the basic and token methods, the methods the settings enable, and the
Authenticator that asks them in turn (with the per-process cache of verified credentials and the
throttle on failures) and turns the Principal it gets into the request's RequestContext (the
project of the request: X-OCCI-Project, the token's scope, or the user's only project).

No HTTP framework here: occi.api.auth is the falcon side. The OIDC and X.509 methods live in
occi.identity.oidc and occi.identity.x509 and are imported only when the settings enable them.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import logging
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

from occi import errors
from occi.context import DEFAULT_PROJECT, RequestContext, new_request_id
from occi.identity import passwords, tokens
from occi.identity.cache import TtlCache, credential_key
from occi.identity.grants import principal_of
from occi.identity.model import ADMIN, Project
from occi.identity.principal import AuthFailed, AuthMethod, Presented, Principal
from occi.identity.store import NAME
from occi.identity.throttle import Throttle, client_address, parse_networks
from occi.settings import Settings, SettingsError

if TYPE_CHECKING:
    from occi.identity.store import IdentityTx
    from occi.store.base import Store, StoreTx

log = logging.getLogger("occi.auth")

#: the realm every challenge names
REALM = "occi"
#: what a request without credentials is told to send, by method (REQUIRED: basic and token)
WHAT_TO_SEND = {
    "basic": "HTTP Basic credentials",
    "token": "a token (Authorization: Bearer / X-Auth-Token)",
    "oidc": "an OpenID Connect access token (Authorization: Bearer)",
    "x509": "a client certificate (through the TLS proxy)",
}
REQUIRED = (
    "authentication required: send HTTP Basic credentials or a token "
    "(Authorization: Bearer / X-Auth-Token)"
)
#: what a request with credentials that prove nothing is told, whatever was wrong
REJECTED = "the credentials were not accepted"
#: the request header naming the project a request acts in (its name or its id)
PROJECT_HEADER = "X-OCCI-Project"
#: verified credentials and resolved project names kept per process at most
CACHE_SIZE = 10_000


def _identity(tx: StoreTx) -> IdentityTx:
    """The identity tables in a transaction of the SQL store (the only store there is)."""
    from occi.identity.store import IdentityTx
    from occi.store.sql import SqlTx

    return IdentityTx(cast(SqlTx, tx))


# ============================================================================= the principal
# ============================================================================= basic
_dummy_hash: str | None = None
_dummy_lock = threading.Lock()


def _dummy() -> str:
    """A hash nobody knows the password of, made once: an unknown user's password is checked
    against it, so that a guess at a user name takes as long as a guess at a password."""
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = passwords.hash_password(secrets.token_urlsafe(24))
        return _dummy_hash


class BasicMethod:
    """`Authorization: Basic base64(user:password)`, checked against the user's argon2id hash."""

    name = "basic"

    def challenge(self) -> str:
        return f'Basic realm="{REALM}", charset="UTF-8"'

    def find(self, headers: Mapping[str, str], remote_addr: str) -> Presented | None:
        scheme, _, value = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise AuthFailed("malformed Basic credentials (not base64 of UTF-8)") from None
        user, colon, password = decoded.partition(":")
        if not colon or not user:
            raise AuthFailed("malformed Basic credentials (no user name and colon)")
        return Presented(self.name, credential_key(self.name, user, password), user, password)

    def verify(self, presented: Presented, store: Store) -> Principal:
        name = presented.user or ""
        password = str(presented.secret)
        with store.begin(readonly=True) as tx:
            ident = _identity(tx)
            try:
                user = ident.user(name)
            except errors.NotFound:
                user = None
            assignments = ident.roles(user.id) if user is not None else []
        # the argon2 work is done whether the user exists, has a password, or is disabled
        if user is None or not user.password_hash:
            passwords.verify_password(_dummy(), password)
            raise AuthFailed("unknown user or a user without a password", name)
        if not passwords.verify_password(user.password_hash, password):
            raise AuthFailed("wrong password", name)
        if user.disabled:
            raise AuthFailed("the user is disabled", name)
        return principal_of(user.id, user.name, self.name, assignments)


# ============================================================================= token
class TokenMethod:
    """API tokens (occi.identity.tokens): `X-Auth-Token: <token>` or `Authorization: Bearer
    <token>`. With `defer_bearer` (the oidc method is enabled too) a Bearer value that is not
    shaped like this server's tokens is left to it."""

    name = "token"

    def __init__(self, defer_bearer: bool = False):
        self.defer_bearer = defer_bearer

    def challenge(self) -> str:
        return f'Bearer realm="{REALM}"'

    def find(self, headers: Mapping[str, str], remote_addr: str) -> Presented | None:
        token = headers.get("x-auth-token")
        if token is None:
            scheme, _, value = headers.get("authorization", "").strip().partition(" ")
            if scheme.lower() != "bearer":
                return None
            token = value
        token = token.strip()
        if tokens.parse_token(token) is None:
            if self.defer_bearer and "x-auth-token" not in headers:
                return None
            raise AuthFailed("not a token of this server (occi_<id>_<secret>)")
        return Presented(self.name, credential_key(self.name, token), None, token)

    def verify(self, presented: Presented, store: Store) -> Principal:
        with store.begin() as tx:  # verifying records the token's last use
            ident = _identity(tx)
            found = ident.verify_token(str(presented.secret))
            if found is None:
                raise AuthFailed("unknown, wrong, expired or revoked token, or a disabled user")
            assignments = ident.roles(found.user_id)
        return principal_of(
            found.user_id, found.user_name, self.name, assignments, scope=found.project_id
        )


# ============================================================================= from settings
#: the class each lazily imported method module provides, by method name
_PLUGGED = {"oidc": "OidcMethod", "x509": "X509Method"}


def methods_from_settings(settings: Settings) -> list[AuthMethod]:
    """The enabled methods, in the order of the `auth` setting (empty for `none`). The OIDC
    and X.509 modules are imported only when enabled; each provides `from_settings(settings)`
    (or a class OidcMethod / X509Method taking the settings)."""
    enabled = settings.auth_methods()
    out: list[AuthMethod] = []
    for name in enabled:
        if name == "none":
            continue
        if name == "basic":
            out.append(BasicMethod())
        elif name == "token":
            out.append(TokenMethod(defer_bearer="oidc" in enabled))
        elif name in _PLUGGED:
            try:
                module = importlib.import_module(f"occi.identity.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"occi.identity.{name}":
                    raise SettingsError(
                        f"setting auth: the {name} method needs the package {exc.name}, "
                        "which is not installed"
                    ) from None
                raise SettingsError(
                    f"setting auth: the {name} method is not available in this server "
                    f"(no module occi.identity.{name})"
                ) from None
            factory = getattr(module, "from_settings", None) or getattr(module, _PLUGGED[name])
            out.append(factory(settings))
        else:  # Settings.from_mapping refuses these already
            raise SettingsError(f"setting auth: unknown method {name}")
    return out


def unauthenticated_project(settings: Settings, store: Store) -> tuple[str, str]:
    """(id, name) of the project every request acts in when `auth` is none: `auth_project`,
    a name or an id (`default` is the project of that name and id, read from nowhere)."""
    if settings.auth_project == DEFAULT_PROJECT:
        return DEFAULT_PROJECT, DEFAULT_PROJECT
    with store.begin(readonly=True) as tx:
        found = _identity(tx).find_project(settings.auth_project)
    if found is None:
        raise SettingsError(
            f"setting auth_project names no project: {settings.auth_project!r} "
            f"(occi-server projects create {settings.auth_project} makes it)"
        )
    return found.id, found.name


# ============================================================================= authenticator
class Authenticator:
    """Asks the methods in turn for the request's credentials, verifies the first found
    (unless this process verified them in the last `cache_seconds`), refuses with 429 an
    address or user name past `fail_limit` failures in `fail_window` seconds, and makes the
    request's context for the project it names."""

    def __init__(
        self,
        methods: Sequence[AuthMethod],
        store: Store,
        *,
        cache_seconds: float = 30.0,
        fail_limit: int = 10,
        fail_window: float = 60.0,
        proxies: str = "",
        cache_size: int = CACHE_SIZE,
    ):
        if not methods:
            raise SettingsError("setting auth: name at least one method (or none)")
        self.methods = list(methods)
        self.store = store
        self.cache: TtlCache[Principal] = TtlCache(cache_seconds, cache_size)
        self.projects: TtlCache[Project | None] = TtlCache(cache_seconds, cache_size)
        self.throttle = Throttle(fail_limit, fail_window)
        self.proxies = parse_networks(proxies)
        self.challenges = [m.challenge() for m in self.methods]
        sends = [WHAT_TO_SEND.get(m.name, m.challenge()) for m in self.methods]
        #: what a request without credentials is told (REQUIRED for basic and token)
        self.required = "authentication required: send " + " or ".join(sends)

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> Authenticator:
        try:
            parse_networks(settings.x509_proxies)
        except ValueError as exc:
            raise SettingsError(f"setting x509_proxies: {exc}") from None
        return cls(
            methods_from_settings(settings),
            store,
            cache_seconds=settings.auth_cache_seconds,
            fail_limit=settings.auth_fail_limit,
            fail_window=settings.auth_fail_window,
            proxies=settings.x509_proxies,
        )

    # ------------------------------------------------------------------ who
    def _unauthorized(self, message: str) -> errors.Unauthorized:
        return errors.Unauthorized(
            message, headers={"WWW-Authenticate": ", ".join(self.challenges)}
        )

    def _throttled(self, address: str, user: str | None) -> None:
        wait = self.throttle.retry_after(address, user)
        if wait is not None:
            raise errors.TooManyRequests(
                f"too many failed authentications from this address or for this user: try "
                f"again in {wait} seconds",
                headers={"Retry-After": str(wait)},
            )

    def _failed(self, address: str, user: str | None, method: str, reason: str) -> None:
        self.throttle.failed(address, user)
        self.throttle.warn(
            "authentication failed: address %s, user %s, method %s: %s",
            address,
            user if user is not None else "-",
            method,
            reason,
        )

    def address(self, remote_addr: str, forwarded_for: str | None) -> str:
        return client_address(remote_addr or "-", forwarded_for, self.proxies)

    def authenticate(
        self, headers: Mapping[str, str], address: str, peer: str | None = None
    ) -> Principal:
        """The principal of the request's credentials (header names lower-case). `address` is
        the client's (throttling, the log), `peer` the connection's (REMOTE_ADDR, what the
        methods are given: X.509 believes only its proxies); the same when not given. Raises
        Unauthorized (none found, or not accepted) and TooManyRequests (throttled)."""
        peer = address if peer is None else peer
        for method in self.methods:
            try:
                presented = method.find(headers, peer)
            except AuthFailed as exc:
                self._throttled(address, exc.user)
                self._failed(address, exc.user, method.name, exc.reason)
                raise self._unauthorized(REJECTED) from None
            if presented is not None:
                break
        else:
            raise self._unauthorized(self.required)
        self._throttled(address, presented.user)
        key = f"{method.name}:{presented.key}"  # one method's key never names another's
        found = self.cache.get(key)
        if found is not None:
            return found
        try:
            principal = method.verify(presented, self.store)
        except AuthFailed as exc:
            self._failed(address, exc.user or presented.user, method.name, exc.reason)
            raise self._unauthorized(REJECTED) from None
        self.cache.put(key, principal)
        return principal

    # ------------------------------------------------------------------ which project
    def _project(self, name_or_id: str) -> Project | None:
        """Any project by name or id (for an administrator), remembered like credentials."""
        key = "p:" + name_or_id
        found = self.projects.get(key)
        if found is None:
            with self.store.begin(readonly=True, single=True) as tx:
                found = _identity(tx).find_project(name_or_id)
            if found is not None:
                self.projects.put(key, found)
        return found

    @staticmethod
    def _held(p: Principal, name_or_id: str) -> tuple[str, str] | None:
        """(id, name) of a project the principal holds a role on, by its id or name."""
        if name_or_id in p.roles:
            return name_or_id, p.roles[name_or_id][0]
        for pid, (name, _) in p.roles.items():
            if name == name_or_id:
                return pid, name
        return None

    @staticmethod
    def _yours(p: Principal) -> str:
        names = sorted(name for name, _ in p.roles.values())
        return f"yours: {', '.join(names)}" if names else "you hold no role in any project"

    def context(self, p: Principal, wanted: str | None, request_id: str | None) -> RequestContext:
        """The request's context: the principal acting in the project `wanted` names (the
        X-OCCI-Project header), else in the token's project, else in their only one."""
        if wanted is not None:
            wanted = wanted.strip()
            if not NAME.fullmatch(wanted):
                raise errors.BadRequest(
                    f"{PROJECT_HEADER} names a project by its name or id (letters, digits, "
                    "'.', '_', '@', '-')",
                    code="bad_project",
                )
        chosen: tuple[str, str] | None
        if p.scope is not None:
            chosen = self._held(p, p.scope)
            if chosen is None and p.admin:
                project = self._project(p.scope)
                chosen = (project.id, project.name) if project is not None else None
            if chosen is None:
                raise errors.Forbidden(
                    "you hold no role in the project this token is scoped to any more",
                    code="project_forbidden",
                )
            if wanted is not None and wanted not in chosen:
                raise errors.Forbidden(
                    f"this token is scoped to the project {chosen[1]}: it cannot act in {wanted}",
                    code="project_forbidden",
                )
        elif wanted is not None:
            chosen = self._held(p, wanted)
            if chosen is None and p.admin:
                project = self._project(wanted)
                if project is None:
                    raise errors.BadRequest(
                        f"no project named {wanted} ({PROJECT_HEADER})", code="bad_project"
                    )
                chosen = (project.id, project.name)
            if chosen is None:
                raise errors.Forbidden(
                    f"you hold no role in a project named {wanted} ({self._yours(p)})",
                    code="project_forbidden",
                )
        elif len(p.roles) == 1:
            ((pid, (name, _)),) = p.roles.items()
            chosen = (pid, name)
        elif not p.roles:
            if not p.admin:
                raise errors.Forbidden(
                    "you hold no role in any project: an administrator grants one "
                    "(occi-server roles grant USER PROJECT member)",
                    code="project_forbidden",
                )
            chosen = (DEFAULT_PROJECT, DEFAULT_PROJECT)
        else:
            names = ", ".join(sorted(name for name, _ in p.roles.values()))
            raise errors.BadRequest(
                f"you hold roles in several projects: name one with {PROJECT_HEADER}: {names}",
                code="project_required",
            )
        pid, name = chosen
        roles = set()
        held = p.roles.get(pid)
        if held is not None:
            roles.add(held[1])
        if p.admin:
            roles.add(ADMIN)
        return RequestContext(p.name, pid, frozenset(roles), request_id or new_request_id(), name)

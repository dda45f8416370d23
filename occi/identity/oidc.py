"""OpenID Connect: `Authorization: Bearer <JWT>` access tokens from the issuers we trust.

The room holds the AuthMethod `OidcMethod` (find the JWT, verify it against its issuer's keys,
find or create its user, add the roles its entitlements grant), the per-issuer key cache with
its bounded, rate-limited fetching (discovery, then the JWKS), and the parsing of the
entitlement template and the role map (`oidc_entitlement`, `oidc_roles`). No falcon here.

What is refused before anything is fetched: a token longer than MAX_TOKEN, an algorithm that is
not asymmetric (`none`, HS*: an HMAC "signed" with the issuer's public key proves nothing), an
issuer that is not configured. An unknown key id makes one refetch of the issuer's keys (they
rotated), at most once per REFETCH_INTERVAL per issuer whatever clients send.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import jwt

from occi.errors import Conflict, NotFound
from occi.identity.grants import principal_for
from occi.identity.model import MEMBER, PROJECT_ROLES, User
from occi.identity.principal import AuthFailed, Presented, Principal
from occi.identity.store import NAME, IdentityTx
from occi.settings import Settings, SettingsError

if TYPE_CHECKING:
    from occi.store.base import Store

log = logging.getLogger(__name__)

#: the longest JWT looked at (characters); real access tokens are a few kilobytes
MAX_TOKEN = 16 * 1024
#: the largest discovery document or JWKS read from an issuer (bytes)
MAX_RESPONSE = 512 * 1024
#: keys kept per issuer (the rest of a bigger JWKS is ignored)
MAX_KEYS = 32
#: seconds to wait on an issuer (connect, then each read)
HTTP_TIMEOUT = 5.0
#: an unknown key id refetches an issuer's keys at most this often (seconds)
REFETCH_INTERVAL = 30.0
#: keys are fetched again after this long, so a key the issuer withdrew stops being trusted
KEYS_MAX_AGE = 3600.0
#: entitlement values looked at per token, and the longest one
MAX_ENTITLEMENTS = 1000
MAX_ENTITLEMENT = 1024
#: the longest subject kept
MAX_SUBJECT = 255

#: the asymmetric algorithms accepted, by the JWK key type (and EC curve) they need
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHMS = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
ALGORITHMS = (*RSA_ALGORITHMS, *EC_ALGORITHMS, "EdDSA")

DEFAULT_CHALLENGE = 'Bearer realm="occi"'


def _fits(alg: str, jwk: Mapping[str, Any]) -> bool:
    """Whether a key of this JWK can check a signature of this algorithm."""
    if jwk.get("use") not in (None, "sig"):
        return False
    if jwk.get("alg") not in (None, alg):
        return False
    kty = jwk.get("kty")
    if alg in RSA_ALGORITHMS:
        return kty == "RSA"
    if alg in EC_ALGORITHMS:
        return kty == "EC" and jwk.get("crv") == EC_ALGORITHMS[alg]
    if alg == "EdDSA":
        return kty == "OKP" and jwk.get("crv") in ("Ed25519", "Ed448")
    return False


class _NoFileRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects to http and https only (urllib would follow one to ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        _NoFileRedirects(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.HTTPDefaultErrorHandler(),
    ):
        opener.add_handler(handler)
    return opener


def fetch_json(url: str) -> dict[str, Any]:
    """GET a JSON object over http(s), bounded in time and size; OSError or ValueError else."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with _opener().open(request, timeout=HTTP_TIMEOUT) as response:
        body = response.read(MAX_RESPONSE + 1)
    if len(body) > MAX_RESPONSE:
        raise ValueError(f"{url} answered more than {MAX_RESPONSE} bytes")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError(f"{url} did not answer a JSON object")
    return data


class _Issuer:
    """One trusted issuer's signing keys, fetched on demand and kept."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic):
        self.url = url
        self.clock = clock
        self.lock = threading.Lock()
        self.jwks_uri: str | None = None
        #: kid -> JWK (a dict), as last fetched; None before the first fetch
        self.keys: dict[str, dict[str, Any]] | None = None
        self.fetched_at = 0.0
        #: when the last fetch began (successful or not): the rate limit counts from it
        self.tried_at: float | None = None
        self.fetches = 0

    def _discover(self) -> str:
        doc = fetch_json(self.url.rstrip("/") + "/.well-known/openid-configuration")
        if doc.get("issuer") != self.url:
            raise ValueError(
                f"its discovery document names the issuer {doc.get('issuer')!r}, not {self.url!r}"
            )
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str) or urllib.parse.urlsplit(uri).scheme not in (
            "http",
            "https",
        ):
            raise ValueError(f"its discovery document has no usable jwks_uri ({uri!r})")
        return uri

    def _refresh(self, now: float) -> None:
        """Fetch the keys (the caller holds the lock and checked the rate limit)."""
        self.tried_at = now
        self.fetches += 1
        try:
            if self.jwks_uri is None:
                self.jwks_uri = self._discover()
            jwks = fetch_json(self.jwks_uri)
            listed = jwks.get("keys")
            if not isinstance(listed, list):
                raise ValueError("its JWKS has no list of keys")
        except (OSError, ValueError) as exc:
            self.jwks_uri = None  # discover again next time: the issuer may have moved it
            log.warning("could not fetch the signing keys of the OIDC issuer %s: %s", self.url, exc)
            return
        keys: dict[str, dict[str, Any]] = {}
        for jwk in listed[:MAX_KEYS]:
            if isinstance(jwk, dict) and isinstance(jwk.get("kty"), str):
                keys[str(jwk.get("kid", ""))] = jwk
        if len(listed) > MAX_KEYS:
            log.warning(
                "the OIDC issuer %s lists %d keys: only the first %d are used",
                self.url,
                len(listed),
                MAX_KEYS,
            )
        self.keys = keys
        self.fetched_at = now
        log.info("fetched %d signing keys of the OIDC issuer %s", len(keys), self.url)

    def _may_fetch(self, now: float) -> bool:
        return self.tried_at is None or now - self.tried_at >= REFETCH_INTERVAL

    def key(self, kid: str | None, alg: str) -> dict[str, Any]:
        """The JWK for this key id and algorithm; AuthFailed when there is none, after at most
        one fetch (rate-limited)."""
        keys = self.keys
        now = self.clock()
        found = self._pick(keys, kid, alg)
        if found is not None and now - self.fetched_at < KEYS_MAX_AGE:
            return found
        with self.lock:
            now = self.clock()
            if self.keys is not keys:  # another thread fetched meanwhile
                found = self._pick(self.keys, kid, alg)
                if found is not None:
                    return found
            if self._may_fetch(now):
                self._refresh(now)
                found = self._pick(self.keys, kid, alg)
            elif found is None and self.keys is None:
                raise AuthFailed(f"the signing keys of {self.url} are unavailable")
        if found is None:
            raise AuthFailed(f"no signing key {kid!r} for {alg} at {self.url}")
        return found

    @staticmethod
    def _pick(
        keys: dict[str, dict[str, Any]] | None, kid: str | None, alg: str
    ) -> dict[str, Any] | None:
        if not keys:
            return None
        if kid is None:
            # no key id: only an issuer with a single key that fits leaves no doubt
            fitting = [k for k in keys.values() if _fits(alg, k)]
            return fitting[0] if len(fitting) == 1 else None
        jwk = keys.get(kid)
        return jwk if jwk is not None and _fits(alg, jwk) else None


def entitlement_pattern(template: str) -> re.Pattern[str]:
    """The regular expression of an entitlement template: `{project}` a project name, `{role}`
    a role word, everything else literal. SettingsError unless each occurs once."""
    parts = re.split(r"(\{project\}|\{role\})", template)
    if parts.count("{project}") != 1 or parts.count("{role}") != 1:
        raise SettingsError(
            f"setting oidc_entitlement must hold {{project}} and {{role}} once each: {template!r}"
        )
    out = []
    for part in parts:
        if part == "{project}":
            out.append(r"(?P<project>[A-Za-z0-9][A-Za-z0-9._@-]{0,63})")
        elif part == "{role}":
            out.append(r"(?P<role>[A-Za-z0-9_.-]{1,64})")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def role_map(text: str) -> dict[str, str]:
    """`member=member vm_operator,reader=reader` as {their role: our role}, member winning."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        ours, sep, theirs = item.partition("=")
        ours = ours.strip()
        if not sep or ours not in PROJECT_ROLES or not theirs.split():
            raise SettingsError(
                f"setting oidc_roles: {item!r} is not <role>=<names>, with the role one of "
                f"{', '.join(PROJECT_ROLES)}"
            )
        for name in theirs.split():
            if out.get(name) != MEMBER:
                out[name] = ours
    return out


@dataclass(frozen=True)
class _Verified:
    issuer: str
    subject: str
    claims: dict[str, Any]


class OidcMethod:
    """Bearer JWTs from `issuers`, users created on first sight, roles from entitlements."""

    name = "oidc"

    def __init__(
        self,
        issuers: Iterable[str],
        *,
        audience: str | None = None,
        leeway: float = 60.0,
        groups_claims: Iterable[str] = ("eduperson_entitlement", "entitlements", "groups"),
        entitlement: str = "urn:mace:egi.eu:group:{project}:role={role}#aai.egi.eu",
        roles: str = "member=member vm_operator manager owner,reader=reader",
        clock: Callable[[], float] = time.monotonic,
    ):
        self.issuers = {url: _Issuer(url, clock) for url in issuers}
        self.audience = audience or None
        self.leeway = leeway
        self.groups_claims = [c for c in groups_claims if c]
        self.entitlement = entitlement_pattern(entitlement)
        self.roles = role_map(roles)
        self._told: set[str] = set()

    def challenge(self) -> str:
        return DEFAULT_CHALLENGE

    def find(self, headers: Mapping[str, str], remote_addr: str) -> Presented | None:
        scheme, _, value = headers.get("authorization", "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or value.count(".") != 2:
            return None  # not a JWT: an API token, or another method's
        if len(value) > MAX_TOKEN:
            raise AuthFailed(f"a bearer JWT of {len(value)} characters (at most {MAX_TOKEN})")
        key = hashlib.sha256(value.encode()).hexdigest()
        return Presented(method=self.name, key=key, user=None, secret=value)

    # ------------------------------------------------------------------ the token
    def check(self, token: str) -> _Verified:
        """The token's verified claims; AuthFailed for anything wrong with it."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthFailed(f"a malformed JWT: {exc}") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise AuthFailed(f"a JWT signed with {alg!r}, not one of {', '.join(ALGORITHMS)}")
        iss = unverified.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            self._untrusted(iss)
            raise AuthFailed(f"a JWT from the issuer {iss!r}, which is not trusted")
        kid = header.get("kid")
        jwk = issuer.key(kid if isinstance(kid, str) else None, alg)
        try:
            key = jwt.PyJWK(jwk, algorithm=alg).key
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=issuer.url,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "sub"], "verify_aud": bool(self.audience)},
            )
        except jwt.PyJWTError as exc:
            raise AuthFailed(f"a JWT of {issuer.url} that does not verify: {exc}") from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > MAX_SUBJECT:
            raise AuthFailed(f"a JWT of {issuer.url} without a usable subject")
        return _Verified(issuer.url, sub, claims)

    def _untrusted(self, iss: object) -> None:
        """Say once per issuer (for the first 100) that its tokens are refused: a configuration
        mistake (a trailing slash) shows in the log, junk does not flood it."""
        text = repr(iss)[:200]
        if text not in self._told and len(self._told) < 100:
            self._told.add(text)
            log.warning(
                "refused a JWT from the OIDC issuer %s: not in oidc_issuers (%s)",
                text,
                " ".join(self.issuers) or "none configured",
            )

    # ------------------------------------------------------------------ roles
    def entitled(self, claims: Mapping[str, Any]) -> dict[str, str]:
        """Project name -> our role, from the first of the groups claims the token has."""
        values: object = None
        for claim in self.groups_claims:
            if claim in claims:
                values = claims[claim]
                break
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list):
            return {}
        out: dict[str, str] = {}
        for value in values[:MAX_ENTITLEMENTS]:
            if not isinstance(value, str) or len(value) > MAX_ENTITLEMENT:
                continue
            m = self.entitlement.fullmatch(value)
            ours = self.roles.get(m["role"]) if m else None
            if m and ours and out.get(m["project"]) != MEMBER:
                out[m["project"]] = ours
        return out

    # ------------------------------------------------------------------ the user
    def _names(self, verified: _Verified) -> list[str]:
        """Names to try for a new user: theirs when free and valid, then one derived from the
        issuer and subject (the same in every process, so racing creations collide)."""
        out = []
        for claim in ("preferred_username", "email"):
            name = verified.claims.get(claim)
            if isinstance(name, str) and NAME.fullmatch(name) and name not in out:
                out.append(name)
        digest = hashlib.sha256(f"{verified.issuer}\0{verified.subject}".encode()).hexdigest()
        out.append(f"oidc-{digest[:16]}")
        return out

    def _create(self, ident: IdentityTx, verified: _Verified) -> User:
        for name in self._names(verified):
            try:
                user = ident.create_user(
                    name, oidc_issuer=verified.issuer, oidc_subject=verified.subject
                )
            except Conflict:
                # the name is someone else's, or another request just created this user
                found = ident.user_by_oidc(verified.issuer, verified.subject)
                if found is not None:
                    return found
                continue
            log.info(
                "created the user %s for the OIDC subject %s of %s",
                name,
                verified.subject,
                verified.issuer,
            )
            return user
        raise AuthFailed(f"no free user name for {verified.subject} of {verified.issuer}")

    def verify(self, presented: Presented, store: Store) -> Principal:
        verified = self.check(cast(str, presented.secret))
        entitled = self.entitled(verified.claims)
        with store.begin(readonly=True) as tx:
            ident = IdentityTx(tx)  # type: ignore[arg-type]
            user = ident.user_by_oidc(verified.issuer, verified.subject)
            if user is not None:
                return principal_for(ident, user, self.name, self._projects(ident, entitled))
        with store.begin() as tx:
            ident = IdentityTx(tx)  # type: ignore[arg-type]
            user = ident.user_by_oidc(verified.issuer, verified.subject)
            if user is None:
                user = self._create(ident, verified)
            return principal_for(ident, user, self.name, self._projects(ident, entitled))

    def _projects(
        self, ident: IdentityTx, entitled: Mapping[str, str]
    ) -> list[tuple[str, str, str]]:
        out = []
        for name, role in entitled.items():
            try:
                project = ident.project(name)
            except NotFound:
                log.debug("an entitlement names the project %s, which does not exist", name)
                continue
            out.append((project.id, project.name, role))
        return out


def _split(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,]+", text.strip()) if p]


def method_from_settings(settings: Settings) -> OidcMethod:
    """The OIDC method the settings describe; SettingsError when no issuer is trusted."""
    issuers = _split(settings.oidc_issuers)
    if not issuers:
        raise SettingsError("setting auth lists oidc, but oidc_issuers names no issuer")
    for url in issuers:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise SettingsError(f"setting oidc_issuers: {url!r} is not an http(s) URL")
    if not settings.oidc_audience.strip():
        log.warning(
            "oidc_audience is empty: a token the issuers made for any other service is "
            "accepted here too (set it to this service's client id or audience)"
        )
    return OidcMethod(
        issuers,
        audience=settings.oidc_audience.strip() or None,
        leeway=settings.oidc_leeway,
        groups_claims=_split(settings.oidc_groups_claim),
        entitlement=settings.oidc_entitlement,
        roles=settings.oidc_roles,
    )


#: the name occi.identity.authn.methods_from_settings looks for
from_settings = method_from_settings

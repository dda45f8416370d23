"""The console's OpenID Connect login: the authorization code flow with the first issuer the
server trusts (`oidc_issuers`), as the client `console_oidc_client_id`.

The browser goes to the issuer's authorization endpoint with a random `state` (kept in a
cookie of its own); the issuer sends it back with a code, which the server exchanges for an
access token at the token endpoint; the token is then verified by the API's own OIDC method
(signature, issuer, audience, entitlements), exactly as a Bearer token on the API would be. The
roles its entitlements grant are kept with the session.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from occi import errors
from occi.console.sessions import LIFETIME
from occi.console.web import COOKIE, PREFIX, Call
from occi.identity.grants import principal_for
from occi.identity.oidc import HTTP_TIMEOUT, MAX_RESPONSE, fetch_json
from occi.identity.store import IdentityTx
from occi.settings import Settings

log = logging.getLogger(__name__)

STATE_COOKIE = "occi_console_oidc"
CALLBACK = "/login/oidc/callback"
#: the longest code and state read from the issuer's redirect
MAX_PARAM = 4096


@dataclass
class OidcLogin:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    base_url: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcLogin | None:
        """The login the settings configure; None without `oidc` in `auth` or a client id."""
        issuers = [u for u in settings.oidc_issuers.replace(",", " ").split() if u]
        if "oidc" not in settings.auth_methods() or not settings.console_oidc_client_id:
            return None
        if not issuers:
            return None
        return cls(
            issuers[0].rstrip("/"),
            settings.console_oidc_client_id,
            settings.console_oidc_client_secret,
            settings.console_oidc_scopes,
            settings.base_url.rstrip("/"),
        )

    def _endpoints(self) -> tuple[str, str]:
        try:
            doc = fetch_json(self.issuer + "/.well-known/openid-configuration")
            return str(doc["authorization_endpoint"]), str(doc["token_endpoint"])
        except (OSError, ValueError, KeyError) as exc:
            log.warning("OIDC login: the issuer %s cannot be asked: %s", self.issuer, exc)
            raise errors.ServiceUnavailable(
                "the identity provider cannot be reached: log in with a password"
            ) from None

    def _redirect_uri(self, call: Call) -> str:
        root = self.base_url or f"{call.req.scheme}://{call.req.netloc}"
        return root + PREFIX + CALLBACK

    # ------------------------------------------------------------------ the flow
    def start(self, call: Call) -> None:
        """GET /console/login/oidc: to the issuer, with a fresh state."""
        authorize, _ = self._endpoints()
        state = secrets.token_urlsafe(24)
        # Lax, not Strict: the issuer's redirect back is a navigation from another site
        call.resp.set_cookie(STATE_COOKIE, state, max_age=600, path=PREFIX,
                             secure=call.console.secure(call.req), http_only=True,
                             same_site="Lax")  # fmt: skip
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self._redirect_uri(call),
                "scope": self.scopes,
                "state": state,
                "nonce": secrets.token_urlsafe(16),
            }
        )
        sep = "&" if "?" in authorize else "?"
        call.resp.status = "303 See Other"
        call.resp.set_header("Location", f"{authorize}{sep}{query}")

    def callback(self, call: Call) -> None:
        """GET /console/login/oidc/callback?code=&state=: the code for a token, the token for
        a session."""
        call.audit("login oidc")
        error = call.req.get_param("error")
        if error:
            raise errors.Unauthorized(f"the identity provider refused the login: {error[:200]}")
        code = call.req.get_param("code") or ""
        state = call.req.get_param("state") or ""
        expected = call.req.cookies.get(STATE_COOKIE) or ""
        if not code or len(code) > MAX_PARAM or len(state) > MAX_PARAM:
            raise errors.BadRequest("the identity provider sent no usable code")
        if not expected or not hmac.compare_digest(state.encode(), expected.encode()):
            raise errors.Forbidden("this login was not started here (state mismatch): try again")
        token = self._exchange(code, self._redirect_uri(call))
        auth = call.console.authenticator
        peer = call.req.remote_addr or ""
        address = auth.address(peer, call.req.get_header("X-Forwarded-For"))
        principal = auth.authenticate({"authorization": f"Bearer {token}"}, address, peer)
        with call.console.service.store.begin(readonly=True) as tx:
            ident = IdentityTx(tx)  # type: ignore[arg-type]
            stored = principal_for(ident, ident.user(principal.name), "console").roles
        grants = tuple(
            (pid, name, role)
            for pid, (name, role) in sorted(principal.roles.items())
            if stored.get(pid) != (name, role)
        )
        first = (
            min(principal.roles.items(), key=lambda kv: kv[1][0])[0] if principal.roles else None
        )
        ctx = auth.context(principal, first, None)
        call.req.context.principal = principal
        session_token, _ = call.console.sessions.create(principal.user_id, ctx.project, grants)
        call.resp.set_cookie(COOKIE, session_token, max_age=int(LIFETIME.total_seconds()),
                             path=PREFIX, secure=call.console.secure(call.req), http_only=True,
                             same_site="Strict")  # fmt: skip
        call.resp.unset_cookie(STATE_COOKIE, path=PREFIX)
        # a page of ours that moves on: the Strict cookie is sent on a navigation this site
        # starts, not on the end of a redirect chain another site started
        call.render("moving_on.html", target=PREFIX + "/")

    def _exchange(self, code: str, redirect_uri: str) -> str:
        """The access token for a code (client_secret_basic)."""
        _, endpoint = self._endpoints()
        body = urllib.parse.urlencode(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        ).encode()
        basic = base64.b64encode(
            f"{urllib.parse.quote(self.client_id)}:{urllib.parse.quote(self.client_secret)}".encode()
        ).decode()
        request = urllib.request.Request(
            endpoint,
            data=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "Authorization": f"Basic {basic}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
                raw = response.read(MAX_RESPONSE + 1)
            doc: Any = json.loads(raw) if len(raw) <= MAX_RESPONSE else None
        except urllib.error.HTTPError as exc:
            log.warning("OIDC login: the token endpoint refused the code: %s", exc)
            raise errors.Unauthorized("the identity provider refused this login's code") from None
        except (OSError, ValueError) as exc:
            log.warning("OIDC login: the token endpoint cannot be asked: %s", exc)
            raise errors.ServiceUnavailable("the identity provider cannot be reached") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("access_token"), str):
            raise errors.Unauthorized("the identity provider answered no access token")
        return str(doc["access_token"])

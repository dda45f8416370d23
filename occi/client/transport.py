"""HTTP to the OCCI server (httpx): credentials and the project header from the profile, and
every error answer turned into a ClientFailure carrying the server's message and exit code."""

from __future__ import annotations

import json
import logging
import ssl
from typing import Any

import httpx

from occi.client.config import Profile
from occi.client.failures import AuthFailed, ClientFailure, Failed, UsageFailure, for_status

log = logging.getLogger(__name__)
USER_AGENT = "occi-client/0.1 (OCCI/1.2)"


class Transport:
    """One httpx client for one invocation."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.base_url = profile.url
        headers = {"User-Agent": USER_AGENT}
        auth: httpx.Auth | None = None
        method = profile.method
        if method == "basic":
            if profile.user is None:
                raise UsageFailure("basic authentication needs a user (--user or OCCI_USER)")
            auth = httpx.BasicAuth(profile.user, profile.password or "")
        elif method in ("token", "oidc"):
            secret = profile.token if method == "token" else profile.oidc_token
            if not secret:
                flag = "--token" if method == "token" else "--oidc-token"
                raise UsageFailure(f"{method} authentication needs a token ({flag})")
            headers["Authorization"] = f"Bearer {secret}"
        elif method == "x509":
            if not profile.cert:
                raise UsageFailure("x509 authentication needs --cert (and --key)")
        if profile.project:
            headers["X-OCCI-Project"] = profile.project
        try:
            self.http = httpx.Client(
                base_url=profile.url,
                headers=headers,
                auth=auth,
                verify=tls_context(profile),
                timeout=profile.http_timeout,
            )
        except (OSError, ValueError) as exc:  # an unreadable certificate, key or CA file
            raise UsageFailure(f"cannot use the TLS files of the profile: {exc}") from None

    def close(self) -> None:
        self.http.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | str | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """The answer of a request to `path` (below the server's URL, or absolute); a
        ClientFailure for an error answer or a server out of reach."""
        log.debug("%s %s", method, path)
        try:
            resp = self.http.request(method, path, headers=headers, content=content, params=params)
        except httpx.TimeoutException:
            raise Failed(
                f"{self.base_url} did not answer within {self.profile.http_timeout} s"
            ) from None
        except httpx.HTTPError as exc:
            raise Failed(f"cannot reach {self.base_url}: {exc}") from None
        if resp.status_code >= 400:
            raise failure_of(resp)
        return resp


def tls_context(profile: Profile) -> ssl.SSLContext:
    """What the client trusts (the system's CAs, or the profile's `ca`; nothing with
    `insecure`) and the certificate it presents (`cert`, with `key` when apart)."""
    ctx = (
        ssl.create_default_context(cafile=profile.ca)
        if profile.ca
        else ssl.create_default_context()
    )
    if profile.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if profile.cert:
        ctx.load_cert_chain(profile.cert, profile.key)
    return ctx


def failure_of(resp: httpx.Response) -> ClientFailure:
    """The server's message and error code from an error answer, in whatever rendering."""
    code = resp.headers.get("X-OCCI-Error-Code")
    text = resp.text.strip()
    message = text
    if "json" in resp.headers.get("Content-Type", ""):
        try:
            error = json.loads(text)["error"]
            message = str(error.get("message") or error.get("reason"))
            code = code or error.get("error_code")
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    message = message or resp.reason_phrase
    failure = for_status(resp.status_code, code, f"{resp.status_code} {message}")
    if isinstance(failure, AuthFailed) and resp.status_code == 401:
        failure.message += " (check the profile's credentials: occi profile show)"
    failure.location = resp.headers.get("Location")
    return failure

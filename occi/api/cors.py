"""Cross-site requests: which web pages may use this server from a browser, and how (CORS).

A browser sends the credentials it holds for this server (a cached Basic login, a client
certificate) with a form or a `fetch` from any other site, and the server cannot tell those
credentials from the user's own intent: the CORS headers only decide whether the *page* may read
the answer, not whether the request is made. So `CorsMiddleware` refuses every unsafe request
(POST, PUT, DELETE, PATCH) whose `Origin` is neither this server's own origin nor one the
`cors_origins` setting lists, with 403 `origin_refused`, before authentication or any handler
runs; the same for an unsafe request that the browser marks `Sec-Fetch-Site: cross-site` but that
names no allowed origin. Safe requests (GET, HEAD) from other origins are answered, without the
CORS headers, so the browser hides the answer from the page.

An allowed origin gets the CORS answer: `Access-Control-Allow-Origin` (that origin, with
`Vary: Origin`), `Access-Control-Allow-Credentials`, the response headers a page may read, and
preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered here with 204, without
credentials (a browser sends none with a preflight): the middleware completes the response and
sets `req.context.cors_preflight`, so the middleware after it (authentication) is skipped.

`cors_origins` = `*` allows every origin without credentials: its pages may make requests a
browser preflights (which then carry no credentials), but not the credential-carrying "simple"
writes a plain form can make.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import falcon

from occi import errors

UNSAFE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
#: what a preflight may ask for
ALLOW_METHODS = "GET, HEAD, POST, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = ", ".join(
    (
        "Authorization",
        "Content-Type",
        "Accept",
        "X-Auth-Token",
        "X-OCCI-Project",
        "X-OCCI-Attribute",
        "Category",
        "Link",
        "X-OCCI-Location",
        "If-Match",
        "If-None-Match",
        "X-Request-Id",
        "Cache-Control",
        "Pragma",
    )
)
#: the response headers a page may read beside the always-readable ones
EXPOSE_HEADERS = ", ".join(
    (
        "Location",
        "ETag",
        "X-OCCI-Location",
        "X-OCCI-Attribute",
        "Category",
        "Link",
        "X-Request-Id",
        "X-OCCI-Error-Code",
        "X-OCCI-Project",
        "WWW-Authenticate",
        "Retry-After",
        "Allow",
        "Server",
    )
)
#: seconds a browser may keep a preflight's answer
MAX_AGE = "600"
#: the content types a page may POST without a preflight (the Fetch standard's "simple" ones)
_SIMPLE_TYPES = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(text: str) -> str | None:
    """`scheme://host[:port]` in lower case without a default port, or None for anything that
    is not such an origin (`null`, a path, garbage)."""
    text = text.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_origins(setting: str) -> tuple[frozenset[str], bool]:
    """The `cors_origins` setting: the origins it lists, and whether it holds `*`. Raises
    ValueError naming an entry that is not an origin."""
    listed: set[str] = set()
    wildcard = False
    for entry in re.split(r"[\s,]+", setting.strip()):
        if not entry:
            continue
        if entry == "*":
            wildcard = True
            continue
        origin = normalise_origin(entry)
        if origin is None:
            raise ValueError(
                f"cors_origins: {entry!r} is not an origin (scheme://host[:port], e.g. "
                "https://console.example.org)"
            )
        listed.add(origin)
    return frozenset(listed), wildcard


class CorsMiddleware:
    """falcon middleware: refuses cross-site writes, answers preflights, adds the CORS headers
    for the origins `origins` (the `cors_origins` setting) allows. Goes before authentication.
    `base_url`, when set, gives the server's own origin (else each request's scheme and Host)."""

    def __init__(self, origins: str = "", base_url: str = ""):
        self.listed, self.wildcard = parse_origins(origins)
        self.own = normalise_origin(base_url) if base_url else None

    def _own_origin(self, req: falcon.Request) -> str | None:
        if self.own is not None:
            return self.own
        return normalise_origin(f"{req.scheme}://{req.netloc}")

    def _judge(self, req: falcon.Request, origin: str) -> str | None:
        """'own', 'listed', 'any' (allowed by `*` only) or None (refused)."""
        normal = normalise_origin(origin)
        if normal is None:
            return "any" if self.wildcard else None
        if normal == self._own_origin(req):
            return "own"
        if normal in self.listed:
            return "listed"
        return "any" if self.wildcard else None

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        origin = req.get_header("Origin")
        req.context.cors_allowed = None
        if origin is None:
            fetch_site = (req.get_header("Sec-Fetch-Site") or "").strip().lower()
            if req.method in UNSAFE_METHODS and fetch_site == "cross-site":
                raise errors.Forbidden(
                    "this write comes from another site (Sec-Fetch-Site: cross-site) without "
                    "an Origin the server allows; list the site's origin in the server's "
                    "cors_origins setting",
                    code="origin_refused",
                )
            return
        verdict = self._judge(req, origin)
        req.context.cors_allowed = verdict
        if req.method == "OPTIONS" and req.get_header("Access-Control-Request-Method"):
            req.context.cors_preflight = True  # authentication lets it through
            resp.status = falcon.HTTP_204
            if verdict is not None:
                resp.set_header("Access-Control-Allow-Methods", ALLOW_METHODS)
                resp.set_header("Access-Control-Allow-Headers", ALLOW_HEADERS)
                resp.set_header("Access-Control-Max-Age", MAX_AGE)
            resp.complete = True
            return
        if req.method not in UNSAFE_METHODS:
            return
        if verdict is None or (verdict == "any" and self._simple(req)):
            raise errors.Forbidden(
                f"this server does not take writes from pages of {origin[:200]}: list that "
                "origin in the server's cors_origins setting to allow them",
                code="origin_refused",
            )

    @staticmethod
    def _simple(req: falcon.Request) -> bool:
        """Whether a browser could have sent this write without a preflight (so possibly with
        the user's credentials, whatever the server answers): a POST of a form's content type."""
        if req.method != "POST":
            return False
        media = (req.content_type or "text/plain").split(";")[0].strip().lower()
        return media in _SIMPLE_TYPES

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        if self.listed:  # answers differ by Origin: caches must keep them apart
            resp.append_header("Vary", "Origin")
        verdict = getattr(req.context, "cors_allowed", None)
        if verdict == "listed":
            resp.set_header("Access-Control-Allow-Origin", req.get_header("Origin") or "")
            resp.set_header("Access-Control-Allow-Credentials", "true")
        elif verdict == "any":
            resp.set_header("Access-Control-Allow-Origin", "*")
        else:
            return
        resp.set_header("Access-Control-Expose-Headers", EXPOSE_HEADERS)

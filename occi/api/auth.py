"""The authentication middleware: every request but the open paths (/healthz for load balancers,
/metrics for Prometheus) is authenticated before falcon routes it, sinks and the query
interface alike, and gets its RequestContext (req.context.occi_context) once.

The methods, the cache and the throttle are occi.identity.authn's; this module only reads the
headers and the client address and hands its refusals (401 with a challenge per method, 429
with Retry-After, 400 and 403 for the project) to the app's one error handler, which renders
them in the client's media type.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping

import falcon

from occi.context import RequestContext
from occi.identity.authn import PROJECT_HEADER, Authenticator, unauthenticated_project
from occi.settings import Settings
from occi.store.base import Store

log = logging.getLogger("occi.auth")


class _Headers(Mapping[str, str]):
    """The request's headers by lower-case name, read only when a method asks (a method
    looks at two or three of them; copying them all would cost every request)."""

    def __init__(self, req: falcon.Request):
        self._req = req

    def __getitem__(self, name: str) -> str:
        value = self._req.get_header(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name.lower() for name in self._req.headers)

    def __len__(self) -> int:
        return len(self._req.headers)


class AuthMiddleware:
    """falcon middleware (after occi.api.metrics.RequestObserver, which gives the request id).
    `authenticator` None: no authentication, every request a member of `project`."""

    def __init__(
        self,
        authenticator: Authenticator | None,
        *,
        project: tuple[str, str] = ("default", "default"),
        open_paths: Iterable[str] = (),
    ):
        self.authenticator = authenticator
        self.project_id, self.project_name = project
        self.open_paths = frozenset(open_paths)
        #: path prefixes ending in "/" of fronts that authenticate their own way (the web
        #: console's session cookie, occi.console; the EC2 front's SigV4, occi.ec2), and each
        #: prefix without its slash: none of this middleware's methods applies there, and
        #: everything else is asked for the API's credentials, never a cookie
        self.open_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, **kw) -> AuthMiddleware:
        if "none" in settings.auth_methods():
            project = unauthenticated_project(settings, store)
            log.warning(
                "authentication is off (auth = none): every request acts as a member of the "
                "project %s; for development only",
                project[1],
            )
            return cls(None, project=project, **kw)
        return cls(Authenticator.from_settings(settings, store), **kw)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = req.path
        if path in self.open_paths or path.startswith(self.open_prefixes):
            return
        if self.open_prefixes and path + "/" in self.open_prefixes:  # /console -> /console/
            return
        rid = getattr(req.context, "request_id", None)
        auth = self.authenticator
        if auth is None:
            ctx = RequestContext.unauthenticated(self.project_id, rid)
            req.context.occi_context = RequestContext(
                None, ctx.project, ctx.roles, ctx.request_id, self.project_name
            )
            return
        headers = _Headers(req)
        peer = req.remote_addr or ""
        address = auth.address(peer, req.get_header("X-Forwarded-For"))
        principal = auth.authenticate(headers, address, peer)
        req.context.principal = principal
        ctx = auth.context(principal, req.get_header(PROJECT_HEADER), rid)
        req.context.occi_context = ctx
        # which project the request acted in (the client may have named none)
        resp.set_header(PROJECT_HEADER, ctx.project_name or ctx.project or "")

"""The web console's plumbing: one falcon resource per path, each request checked the same
way before its view runs (security headers, the session cookie, the CSRF token of a change,
the request context), templates rendered with autoescaping, errors turned into messages.

The views (occi.console.views_*) only parse forms, call the service layer with the context
made here and render templates: authorization is the service's, never decided here.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

import falcon
import jinja2

from occi import errors
from occi.console.sessions import Session, SessionStore
from occi.context import RequestContext
from occi.identity.authn import Authenticator
from occi.identity.grants import principal_for
from occi.identity.principal import AuthFailed
from occi.identity.service import IdentityService
from occi.identity.store import IdentityTx

log = logging.getLogger(__name__)

PREFIX = "/console"
COOKIE = "occi_console"
#: the cookie pairing a login form with its browser (double submit: no session yet)
LOGIN_COOKIE = "occi_console_login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
#: largest form accepted (user data and an SSH key fit well below)
MAX_FORM = 256 * 1024
#: the only scripts a page may run are the server's own files; nothing inline, no frames
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass
class Call:
    """One request to a view: who asks (its context and session), what it sent (the form),
    and how to answer (render, redirect)."""

    console: Console
    req: falcon.Request
    resp: falcon.Response
    ctx: RequestContext | None = None
    session: Session | None = None
    form: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    #: the projects (id, name) the user may switch to
    projects: list[tuple[str, str]] = field(default_factory=list)

    @property
    def htmx(self) -> bool:
        return self.req.get_header("HX-Request") == "true"

    def field(self, name: str, limit: int = 255, *, required: bool = False) -> str:
        """A form field, stripped; 400 past `limit` characters or when required and empty."""
        value = self.form.get(name, "").strip()
        if len(value) > limit:
            raise errors.BadRequest(f"{name} is longer than {limit} characters")
        if required and not value:
            raise errors.BadRequest(f"give a {name.replace('_', ' ')}")
        return value

    def number(self, name: str, low: int, high: int) -> int:
        text = self.field(name, 20, required=True)
        try:
            n = int(text)
        except ValueError:
            raise errors.BadRequest(f"{name} must be a whole number") from None
        if not low <= n <= high:
            raise errors.BadRequest(f"{name} must be between {low} and {high}")
        return n

    def render(self, template: str, status: str = "200 OK", **values: Any) -> None:
        self.resp.status = status
        self.resp.content_type = "text/html; charset=utf-8"
        self.resp.text = self.console.render(template, self, **values)

    def redirect(self, path: str) -> None:
        """After a change: to `path` (an htmx request is told to go there itself)."""
        url = PREFIX + path
        if self.htmx:
            self.resp.status = "200 OK"
            self.resp.set_header("HX-Redirect", url)
            return
        see_other(self.resp, url)

    def audit(self, operation: str, entity: str | None = None) -> None:
        """The name of this change in the audit log (occi.api.audit records every write),
        and the path of the entity it changes (else the console's path is recorded)."""
        self.req.context.audit_operation = f"console {operation}"
        if entity is not None:
            self.req.context.audit_entity = entity


View = Callable[[Call], None]


def see_other(resp: falcon.Response, url: str) -> None:
    resp.status = "303 See Other"
    resp.set_header("Location", url)
    resp.text = ""


class Console:
    """What every view shares: the services, the sessions, the templates."""

    def __init__(self, service: Any, inventory: Any, authenticator: Authenticator):
        settings = inventory.settings
        self.service = service
        self.inventory = inventory
        self.identity = IdentityService(service.store, settings.default_quotas())
        self.sessions = SessionStore(service.store)
        self.authenticator = authenticator
        self.base_url: str = settings.base_url
        #: the OpenID Connect login, where configured (occi.console.oidc_login)
        self.oidc: Any = None
        #: whether passwords are taken: the API takes Basic credentials (or authenticates
        #: nobody, auth = none: the console still asks for the users' passwords)
        methods = settings.auth_methods()
        self.passwords = "basic" in methods or "none" in methods
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("occi.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["prefix"] = PREFIX
        self.env.filters["url"] = lambda v: quote(str(v), safe="")

    def render(self, template: str, call: Call, **values: Any) -> str:
        ctx = call.ctx
        return self.env.get_template(template).render(
            ctx=ctx,
            session=call.session,
            csrf=call.session.csrf if call.session else "",
            admin=bool(ctx and ctx.is_admin),
            path=call.req.path,
            my_projects=call.projects,
            **values,
        )

    # ------------------------------------------------------------------ the request
    def secure(self, req: falcon.Request) -> bool:
        """Whether the browser reached us over TLS (directly, through a proxy gunicorn
        trusts with X-Forwarded-Proto, or behind the configured https base URL)."""
        return req.scheme == "https" or self.base_url.startswith("https://")

    def serve(self, req: falcon.Request, resp: falcon.Response, view: View, public: bool,
              params: dict[str, str]) -> None:  # fmt: skip
        req.context.route = "console"  # for metrics
        for name, value in SECURITY_HEADERS.items():
            resp.set_header(name, value)
        resp.set_header("Cache-Control", "no-store")
        call = Call(self, req, resp, params=params)
        try:
            if req.method == "POST":
                # the audit log's name for a change refused before its view names it
                req.context.audit_operation = f"console {req.path[len(PREFIX) + 1 :][:80]}"
                call.form = self._form(req)
            if not public:
                session = self.sessions.find(req.cookies.get(COOKIE))
                if session is None:
                    return self._to_login(call)
                call.session = session
                call.ctx, call.projects = self.context(
                    session, getattr(req.context, "request_id", None)
                )
                req.context.occi_context = call.ctx  # the audit log's user and project
                if req.method == "POST":
                    self._check_csrf(call, session.csrf)
            view(call)
        except errors.OcciError as exc:
            req.context.error = (exc.code, exc.message)
            self.error(call, exc.status, exc.reason, exc.message)
        except Exception:  # a bug: logged, answered without its internals
            log.exception("console: unhandled error on %s %s", req.method, req.path)
            message = "the server failed to handle this request; the error is in its log"
            req.context.error = ("internal_error", message)
            self.error(call, 500, "Internal Server Error", message)

    def _form(self, req: falcon.Request) -> dict[str, str]:
        length = req.content_length or 0
        if length > MAX_FORM:
            raise errors.PayloadTooLarge(f"the form is above the limit of {MAX_FORM} bytes")
        body = req.bounded_stream.read(MAX_FORM + 1)
        if len(body) > MAX_FORM:
            raise errors.PayloadTooLarge(f"the form is above the limit of {MAX_FORM} bytes")
        kind = (req.content_type or "").split(";")[0].strip().lower()
        if body and kind != "application/x-www-form-urlencoded":
            raise errors.UnsupportedMediaType("the console takes forms only")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        except (UnicodeDecodeError, ValueError):
            raise errors.BadRequest("the form cannot be read") from None
        return dict(pairs)

    @staticmethod
    def _check_csrf(call: Call, expected: str) -> None:
        given = call.form.get(CSRF_FIELD) or call.req.get_header(CSRF_HEADER) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise errors.Forbidden(
                "this change does not carry the page's CSRF token: reload the page and try again",
                code="csrf",
            )

    def _to_login(self, call: Call) -> None:
        url = f"{PREFIX}/login"
        if call.htmx:
            call.resp.status = "401 Unauthorized"
            call.resp.set_header("HX-Redirect", url)
            return
        if call.req.method == "POST":
            raise errors.Unauthorized("your session has ended: log in again")
        see_other(call.resp, url)

    def context(
        self, session: Session, request_id: str | None
    ) -> tuple[RequestContext, list[tuple[str, str]]]:
        """The request context of a session: the user's current roles (read again on every
        request, so a revoked role bites at once) in the session's project; and the projects
        (id, name) the user may switch to (every one, for an administrator)."""
        with self.service.store.begin(readonly=True) as tx:
            ident = IdentityTx(tx)
            try:
                user = ident.user(session.user_name)
                principal = principal_for(ident, user, "console", session.grants)
            except (errors.NotFound, AuthFailed):
                raise errors.Unauthorized("your user no longer exists or is disabled") from None
            if principal.admin:
                projects = [(p.id, p.name) for p in ident.projects()]
            else:
                projects = sorted(
                    ((pid, name) for pid, (name, _) in principal.roles.items()),
                    key=lambda p: p[1],
                )
        wanted = session.project_id
        if wanted is None and len(principal.roles) > 1:  # several: the first by name
            wanted = projects[0][0]
        return self.authenticator.context(principal, wanted, request_id), projects

    def error(self, call: Call, status: int, reason: str, message: str) -> None:
        """An error as a message: in the page's message area for an htmx request, else a
        page of its own."""
        if call.htmx:
            call.resp.status = f"{status} {reason}"
            call.resp.set_header("HX-Retarget", "#flash")
            call.resp.set_header("HX-Reswap", "innerHTML")
            call.resp.content_type = "text/html; charset=utf-8"
            call.resp.text = self.env.get_template("_flash.html").render(message=message)
            return
        call.render("error.html", f"{status} {reason}", code=status, message=message)


class Route:
    """A falcon resource for one console path: `get` and `post` views; `public` paths
    (login, static files) need no session."""

    def __init__(self, console: Console, get: View | None = None, post: View | None = None,
                 public: bool = False):  # fmt: skip
        self.console, self.get, self.post, self.public = console, get, post, public

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        if self.get is None:
            raise falcon.HTTPMethodNotAllowed(["POST"])
        self.console.serve(req, resp, self.get, self.public, params)

    def on_post(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        if self.post is None:
            raise falcon.HTTPMethodNotAllowed(["GET"])
        self.console.serve(req, resp, self.post, self.public, params)

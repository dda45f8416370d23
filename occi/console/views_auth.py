"""The console's doors: the login form (a user name and password, checked by the same
authenticator as the APIs' Basic credentials, with its throttle), logout, the project a session
acts in, and the static files (htmx, Pico CSS, the console's own styles).
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import secrets
from importlib.resources import files

import falcon

from occi import errors
from occi.console.sessions import LIFETIME
from occi.console.web import COOKIE, LOGIN_COOKIE, PREFIX, Call, see_other

#: the files under /console/static/ and their media types
STATIC_TYPES = {".js": "application/javascript", ".css": "text/css", ".txt": "text/plain"}
STATIC = files("occi.console").joinpath("static")


def _cookie(call: Call, name: str, value: str, max_age: int) -> None:
    call.resp.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        secure=call.console.secure(call.req),
        http_only=True,
        same_site="Strict",
    )


def login_form(call: Call) -> None:
    if call.console.sessions.find(call.req.cookies.get(COOKIE)) is not None:
        return see_other(call.resp, PREFIX + "/")
    _login_page(call)


def _login_page(call: Call, status: str = "200 OK", message: str = "", user: str = "") -> None:
    token = secrets.token_urlsafe(24)
    _cookie(call, LOGIN_COOKIE, token, 3600)
    call.render("login.html", status, login_token=token, message=message, user=user,
                oidc=call.console.oidc is not None, passwords=call.console.passwords)  # fmt: skip


def login(call: Call) -> None:
    call.audit("login")
    if not call.console.passwords:
        raise errors.Forbidden(
            "this server takes no passwords (its auth setting has no basic): use the other "
            "ways of logging in offered",
            code="passwords_off",
        )
    expected = call.req.cookies.get(LOGIN_COOKIE) or ""
    given = call.form.get("login_token", "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return _login_page(call, "403 Forbidden", "the login form expired: try again")
    user = call.field("username", 64)
    password = call.form.get("password", "")
    if not user or not password or ":" in user or len(password) > 1024:
        return _login_page(call, "401 Unauthorized", "give your user name and password", user)
    auth = call.console.authenticator
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    peer = call.req.remote_addr or ""
    address = auth.address(peer, call.req.get_header("X-Forwarded-For"))
    try:
        principal = auth.authenticate({"authorization": f"Basic {basic}"}, address, peer)
    except errors.TooManyRequests as exc:
        return _login_page(call, "429 Too Many Requests", exc.message, user)
    except errors.Unauthorized:
        return _login_page(call, "401 Unauthorized", "wrong user name or password", user)
    # the project it acts in: the user's only one, else the first by name (switched later);
    # the authenticator refuses a user who holds no role at all (403)
    first = min(principal.roles.items(), key=lambda kv: kv[1][0])[0] if principal.roles else None
    ctx = auth.context(principal, first, None)
    call.req.context.principal = principal
    token, _ = call.console.sessions.create(principal.user_id, ctx.project)
    _cookie(call, COOKIE, token, int(LIFETIME.total_seconds()))
    call.resp.unset_cookie(LOGIN_COOKIE, path=PREFIX)
    see_other(call.resp, PREFIX + "/")


def logout(call: Call) -> None:
    call.audit("logout")
    assert call.session is not None
    call.console.sessions.delete(call.session)
    call.resp.unset_cookie(COOKIE, path=PREFIX)
    see_other(call.resp, PREFIX + "/login")


def switch_project(call: Call) -> None:
    """Act in another project the user holds a role on (any, for an administrator)."""
    call.audit("switch project")
    assert call.session is not None
    wanted = call.field("project", 64, required=True)
    session = call.session
    # the authenticator refuses a project the user holds no role on (403)
    with_project = dataclasses.replace(session, project_id=wanted)
    ctx, _ = call.console.context(with_project, None)
    call.console.sessions.set_project(session, ctx.project or wanted)
    call.redirect("/")


class StaticFile:
    """GET /console/static/{name}: the files shipped in the package, nothing else."""

    def __init__(self) -> None:
        self.names = {
            p.name
            for p in STATIC.iterdir()
            if p.is_file() and p.name[p.name.rfind(".") :] in STATIC_TYPES
        }

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in self.names:
            raise falcon.HTTPNotFound(description=f"no static file {name[:60]}")
        resp.content_type = STATIC_TYPES[name[name.rfind(".") :]] + "; charset=utf-8"
        resp.set_header("Cache-Control", "public, max-age=3600")
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.data = STATIC.joinpath(name).read_bytes()

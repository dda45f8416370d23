"""The web console under /console/: server-rendered pages (Jinja2, autoescaped) made lively
with htmx, over the same service layer and authorization as the OCCI API.

`mount` adds its routes to the app; the app's authentication middleware leaves the console's
paths to it (it authenticates its own session cookie, which no API ever accepts).
"""

from __future__ import annotations

from typing import Any

import falcon

from occi.console import views_admin, views_auth, views_cloud, wizard
from occi.console.oidc_login import OidcLogin
from occi.console.web import PREFIX, Call, Console, Route, see_other
from occi.identity.authn import Authenticator, BasicMethod

__all__ = ["PREFIX", "mount"]


class _NotFound:
    """Any other path under /console/: a 404 page (never the OCCI handler's)."""

    def __init__(self, console: Console):
        self.console = console

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        def missing(call: Call) -> None:
            call.console.error(call, 404, "Not Found", f"there is no console page {req.path[:80]}")

        self.console.serve(req, resp, missing, True, {})


class _Home:
    """/console: to /console/."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        see_other(resp, PREFIX + "/")


def mount(app: falcon.App, service: Any, inventory: Any, auth: Any) -> tuple[str, ...]:
    """Add the console's routes to `app`; returns the path prefixes it authenticates itself.
    `auth` is the app's AuthMiddleware: its authenticator checks the console's passwords
    (one throttle for both); without one (auth = none) passwords are checked all the same."""
    authenticator = auth.authenticator
    if authenticator is None:
        authenticator = Authenticator([BasicMethod()], service.store)
    c = Console(service, inventory, authenticator)
    routes: dict[str, Route] = {
        "/": Route(c, views_cloud.dashboard),
        "/login": Route(c, views_auth.login_form, views_auth.login, public=True),
        "/logout": Route(c, post=views_auth.logout),
        "/project": Route(c, post=views_auth.switch_project),
        "/instances": Route(c, views_cloud.instances),
        "/instances/new": Route(c, wizard.form, wizard.create),
        "/instances/new/summary": Route(c, wizard.summary),
        "/instances/{entity_id}/row": Route(c, views_cloud.instance_row),
        "/{what}/{entity_id}/{action}": Route(c, post=views_cloud.resource_action),
        "/volumes": Route(c, views_cloud.volumes, views_cloud.volumes),
        "/networks": Route(c, views_cloud.networks, views_cloud.networks),
        "/images": Route(c, views_cloud.images),
        "/images/delete": Route(c, post=views_cloud.image_delete),
        "/events": Route(c, views_cloud.events),
        "/admin/hosts": Route(c, views_admin.hosts),
        "/admin/hosts/{name}/{action}": Route(c, post=views_admin.host_action),
        "/admin/projects": Route(c, views_admin.projects, views_admin.projects),
        "/admin/users": Route(c, views_admin.users, views_admin.users),
        "/admin/roles": Route(c, views_admin.roles, views_admin.roles),
        "/admin/quotas": Route(c, views_admin.quotas, views_admin.quotas),
    }
    c.oidc = OidcLogin.from_settings(inventory.settings)
    if c.oidc is not None:
        routes["/login/oidc"] = Route(c, c.oidc.start, public=True)
        routes["/login/oidc/callback"] = Route(c, c.oidc.callback, public=True)
    for path, route in routes.items():
        app.add_route(PREFIX + path, route)
    app.add_route(PREFIX + "/static/{name}", views_auth.StaticFile())
    app.add_route(PREFIX, _Home())
    app.add_sink(_NotFound(c), prefix=PREFIX + "/")  # after the OCCI sink at /: it wins here
    return (PREFIX + "/",)

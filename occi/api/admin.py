"""The JSON admin API of the inventory, under /-/admin/ (beside the query interface /-/, the
server's own namespace, where no OCCI collection can be):

    GET, POST              /-/admin/zones            list; create {"name": "z1"}
    GET, PATCH, DELETE     /-/admin/zones/{name}     show; change {"name": ...}; delete
    GET, POST              /-/admin/clusters         ?zone=; create {"name", "zone", "backend",
                                                     "settings", "cpu_overcommit", ...}
    GET, PATCH, DELETE     /-/admin/clusters/{name}
    GET, POST              /-/admin/hosts            ?cluster=; create {"name", "cluster", "uri",
                                                     "cores", "memory_gb", "cpu_mhz", "tags"}
    GET, PATCH, DELETE     /-/admin/hosts/{name}
    POST                   /-/admin/hosts/{name}/enable | disable | maintenance
                           | cancel-maintenance
    GET                    /-/admin/events           the audit log, newest first: ?project=,
                                                     ?user=, ?since=1h|ISO-TIME, ?limit=100
    POST                   /-/admin/clusters/{name}/discover-hosts   the hosts its platform
                                                     lists (vCenter, a Xen pool) become its hosts

Bodies and answers are application/json: the documents of occi.inventory.service, the same the
command line prints with --json. Every route is authenticated by the app's middleware (401) and
authorized by the service (403 for anyone but an administrator); errors are the app's, in JSON
whatever the Accept header, with their code in X-OCCI-Error-Code. Writes are audited by the
app's audit middleware under the operation named here ("admin create zone", ...).
"""

from __future__ import annotations

import json
from typing import Any

import falcon

from occi import errors
from occi.api.app import who
from occi.identity import audit
from occi.inventory.service import HOST_ACTIONS, InventoryService

PREFIX = "/-/admin/"
KINDS = ("zones", "clusters", "hosts")
#: the query parameter filtering each list
FILTERS = {"clusters": "zone", "hosts": "cluster"}


class _Admin:
    def __init__(self, service: InventoryService, kind: str, max_body: int):
        self.service = service
        self.kind = kind
        self.what = kind.rstrip("s")
        self.max_body = max_body

    def _begin(self, req: falcon.Request, operation: str | None = None) -> None:
        req.context.route = "admin"  # for metrics
        if operation is not None:
            req.context.audit_operation = f"admin {operation}"

    def _body(self, req: falcon.Request) -> dict[str, Any]:
        length = req.content_length
        if length is not None and length > self.max_body:
            raise errors.PayloadTooLarge(
                f"the request body of {length} bytes is above the limit of {self.max_body} bytes"
            )
        raw = req.bounded_stream.read(self.max_body + 1)
        if len(raw) > self.max_body:
            raise errors.PayloadTooLarge(
                f"the request body is above the limit of {self.max_body} bytes"
            )
        try:
            doc = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise errors.BadRequest(
                f'the body must be a JSON object, e.g. {{"name": "{self.what}1"}}'
            ) from None
        if not isinstance(doc, dict):
            raise errors.BadRequest("the body must be a JSON object")
        return doc

    @staticmethod
    def _send(resp: falcon.Response, status: str, doc: Any) -> None:
        resp.status = status
        resp.content_type = "application/json"
        resp.data = json.dumps(doc).encode()


class Collection(_Admin):
    """/-/admin/{zones,clusters,hosts}: list (GET), create (POST)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._begin(req)
        ctx = who(req)
        if self.kind == "zones":
            docs = self.service.list_zones(ctx)
        elif self.kind == "clusters":
            docs = self.service.list_clusters(ctx, req.get_param("zone"))
        else:
            docs = self.service.list_hosts(ctx, req.get_param("cluster"))
        self._send(resp, "200 OK", {self.kind: docs})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._begin(req, f"create {self.what}")
        ctx = who(req)
        doc = getattr(self.service, f"create_{self.what}")(ctx, self._body(req))
        resp.set_header("Location", f"{req.prefix}{PREFIX}{self.kind}/{doc['name']}")
        self._send(resp, "201 Created", doc)


class Item(_Admin):
    """/-/admin/{kind}/{name}: show (GET), change (PATCH), delete (DELETE)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._begin(req)
        self._send(resp, "200 OK", getattr(self.service, f"show_{self.what}")(who(req), name))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._begin(req, f"update {self.what}")
        ctx = who(req)
        doc = getattr(self.service, f"update_{self.what}")(ctx, name, self._body(req))
        self._send(resp, "200 OK", doc)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._begin(req, f"delete {self.what}")
        getattr(self.service, f"delete_{self.what}")(who(req), name)
        self._send(resp, "200 OK", {"deleted": name})


class HostAction(_Admin):
    """/-/admin/hosts/{name}/{action}: POST enable, disable, maintenance, cancel-maintenance."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str, action: str) -> None:
        self._begin(req, f"{action[:40]} host")
        if action not in HOST_ACTIONS:
            raise errors.NotFound(
                f"no host action {action[:40]!r}: POST one of {', '.join(HOST_ACTIONS)}"
            )
        self._send(resp, "200 OK", self.service.host_action(who(req), name, action))


class Events(_Admin):
    """/-/admin/events: GET the audit log (occi.identity.audit), for administrators."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._begin(req)
        found = audit.events_for(
            who(req),
            self.service.store,
            project=req.get_param("project"),
            user=req.get_param("user"),
            since=req.get_param("since"),
            limit=req.get_param("limit"),
        )
        self._send(resp, "200 OK", {"events": found})


class DiscoverHosts(_Admin):
    """/-/admin/clusters/{name}/discover-hosts: POST syncs the cluster's hosts with its
    platform's list (InventoryService.discover_hosts); answers the hosts."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._begin(req, "discover hosts")
        self._send(resp, "200 OK", {"hosts": self.service.discover_hosts(who(req), name)})


def add_routes(app: falcon.App, service: InventoryService, max_body: int) -> None:
    """The admin routes on `app` (routes: falcon looks at them before the OCCI sink)."""
    app.add_route(f"{PREFIX}events", Events(service, "events", max_body))
    for kind in KINDS:
        app.add_route(f"{PREFIX}{kind}", Collection(service, kind, max_body))
        app.add_route(f"{PREFIX}{kind}/{{name}}", Item(service, kind, max_body))
    app.add_route(f"{PREFIX}hosts/{{name}}/{{action}}", HostAction(service, "hosts", max_body))
    app.add_route(
        f"{PREFIX}clusters/{{name}}/discover-hosts", DiscoverHosts(service, "clusters", max_body)
    )

"""The audit middleware: every write a client asks for over HTTP becomes an event
(occi.identity.audit), whatever its outcome.

Writes are POST, PUT, DELETE and PATCH, actions included, refused ones too (403, 404, 409, a
refused cross-site write); a request whose authentication failed (401) or that was throttled for
failing it (429) is not: the authentication layer logs those. The event names the operation
("create compute", "update", "delete", "action start", "define mixin", "associate mixin"...), the
entity (the created Location, else the path), the status and, for an error, its message. An
audit that cannot be written is logged (during a database outage only at debug level: the store
logs the outage once); the client's answer is never changed by it.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import falcon

from occi.errors import ServiceUnavailable
from occi.identity import audit
from occi.store.base import Store
from occi.store.health import is_outage

log = logging.getLogger(__name__)

WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})
#: answers of the authentication layer, logged there rather than audited
NOT_AUDITED = frozenset({401, 429})


def operation(req: falcon.Request, status: int, query_paths: frozenset[str]) -> str:
    """What the client asked for, in a few words."""
    named = getattr(req.context, "audit_operation", None)  # a route that names its own
    if named:
        return str(named)
    method = req.method
    path = req.path or "/"
    action = req.get_param("action")
    if path in query_paths:
        return {"POST": "define mixin", "DELETE": "delete mixin"}.get(method, method.lower())
    if method == "POST" and action:
        return f"action {action[:60]}"
    route = getattr(req.context, "route", None)  # the handler's classification, once known
    if path.endswith("/"):
        term = path.rstrip("/").rsplit("/", 1)[-1] or "/"
        if route == "mixin_collection":
            return {
                "POST": "associate mixin",
                "PUT": "replace mixin members",
                "DELETE": "dissociate mixin",
            }.get(method, method.lower())
        if method == "POST":
            return f"create {term}"
        if method == "DELETE":
            return f"delete {term} collection"
        return f"{method.lower()} {term} collection"
    if method == "PUT":
        return "create" if status == 201 else "replace"
    return {"POST": "update", "DELETE": "delete"}.get(method, method.lower())


class AuditMiddleware:
    """falcon middleware recording each write request into `store`'s events."""

    def __init__(self, store: Store, query_paths: frozenset[str] | tuple[str, ...] = ()):
        self.store = store
        self.query_paths = frozenset(query_paths)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        if req.method not in WRITES or getattr(req.context, "not_audited", False):
            return  # (a front's read sent as POST, e.g. EC2's Describe* actions)
        status = resp.status_code
        if status in NOT_AUDITED:
            return
        ctx = getattr(req.context, "occi_context", None)  # None: refused before it was made
        if ctx is not None and ctx.audit is not None and ctx.audit.status == status:
            return  # recorded by the service with the request's work (occi.api.app)
        # authenticated, but refused the project it named: the user is known, the project not
        principal = getattr(req.context, "principal", None)
        user = ctx.user if ctx is not None else getattr(principal, "name", None)
        entity = req.path or "/"
        location = resp.get_header("Location")
        if location and req.method in ("POST", "PUT"):  # made, perhaps in state error (502)
            entity = urlsplit(location).path or entity
        entity = getattr(req.context, "audit_entity", None) or entity  # a route that names it
        error = getattr(req.context, "error", None)
        result = error[1] if error and status >= 400 else None
        try:
            op = operation(req, status, self.query_paths)
            if status == 201 and op.split()[0] == "create" and entity.count("/") >= 2:
                op = f"create {entity.strip('/').split('/')[-2]}"
            audit.record(
                self.store,
                operation=op,
                status=status,
                user=user,
                project=ctx.project if ctx is not None else None,
                request_id=getattr(req.context, "request_id", None),
                entity=entity,
                result=result,
            )
        except Exception as exc:  # the write is done (or refused) either way: say so in the log
            # an unreachable database is logged once per outage by the store (occi.store.health)
            outage = isinstance(exc, ServiceUnavailable) and is_outage(exc.__cause__ or exc)
            level = logging.DEBUG if outage else logging.ERROR
            log.log(
                level,
                "audit event for %s %s (status %d) not recorded: %s",
                req.method,
                req.path,
                status,
                exc,
            )

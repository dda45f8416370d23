"""The HTTP face of the server: falcon routes, negotiation, the OCCI verb matrix, errors.

Collection and entity paths go through one sink, because collection paths are data (user mixins
choose their own); the server's fixed paths (the query interface, /healthz, /metrics) are falcon
routes, and so is the JSON admin API of the inventory under /-/admin/ (occi.api.admin).
The handler classifies the path (collection, entity), parses the body with
the rendering its Content-Type names, calls the service, and renders the answer in the rendering
the Accept header chose. It makes the request context (occi.context) the service calls take,
maps an entity's path to its kind and id, and ETags and If-Match to versions. Errors from any
layer, falcon's own included, go to one handler (ErrorRenderer), which answers them in that same
rendering with their machine-readable code.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import falcon

import rendering
from occi import __version__, errors
from occi.api import negotiation
from occi.api.audit import AuditMiddleware
from occi.api.auth import AuthMiddleware
from occi.api.cors import CorsMiddleware
from occi.api.metrics import METRICS_PATH, MetricsResource, RequestObserver
from occi.context import AuditSlot, RequestContext
from occi.metrics import StoreCollector
from occi.model import ActionInvocation, Entity, Kind, Mixin, valid_attribute_name
from occi.service import Expected, Filter, Page, Service, version
from occi.settings import Settings
from rendering.base import (
    LIMITS,
    Context,
    Limits,
    Message,
    ParseError,
    Rendered,
    Rendering,
    Unrenderable,
    check_parsed,
)

try:  # what gunicorn raises while a handler reads a malformed body (bad chunked encoding)
    from gunicorn.http.errors import NoMoreData, ParseException

    _BODY_ERRORS: tuple[type[BaseException], ...] = (ParseException, NoMoreData)
except ImportError:  # served by another WSGI server
    _BODY_ERRORS = ()

log = logging.getLogger(__name__)

SERVER = f"occi-server/{__version__} OCCI/1.2 OCCI-CRTP/1.1"
QUERY_PATHS = ("/-/", "/.well-known/org/ogf/occi/-/")
HEALTH_PATH = "/healthz"
#: paths answered without authentication: the health check (load balancers) and the metrics
#: (Prometheus; counts only, no names or ids)
OPEN_PATHS = frozenset({HEALTH_PATH, METRICS_PATH})
#: the JSON admin API of the inventory (occi.api.admin)
ADMIN_PATH = "/-/admin/"
ACCEPT = ", ".join(rendering.MEDIA_TYPES)
_HEADER_RENDERING = rendering.require("text/occi")


#: what a route answers with, once OcciResource.serve has checked the request
Answer = Callable[[falcon.Request, falcon.Response, str, Rendering, Context], None]


class OcciResource:
    """The sink for collection and entity paths (which are data: user mixins choose theirs):
    dispatches on path shape and method. The fixed paths are falcon routes (FixedPath)."""

    def __init__(
        self,
        service: Service,
        *,
        max_body: int,
        base_url: str = "",
        server_header: bool = True,
        max_discard: int = 64 << 20,
        limits: RequestLimits | None = None,
    ):
        self.limits = limits or RequestLimits()
        self.service = service
        self.server_header = server_header
        self._model_cache: dict[object, object] = {}
        self.max_body = max_body
        self.max_discard = max_discard
        self.base_url = base_url.rstrip("/")

    # ------------------------------------------------------------------ entry point
    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: object) -> None:
        self.serve(req, resp, self._dispatch)

    def serve(self, req: falcon.Request, resp: falcon.Response, answer: Answer) -> None:
        """What every OCCI request goes through (its headers, limits and version checked, its
        rendering chosen) before `answer` (called with the method, HEAD as GET)."""
        ctx = Context(self.base_url or req.prefix)
        if self.server_header:
            resp.set_header("Server", SERVER)
        resp.set_header("Accept", ACCEPT)
        token = LIMITS.set(self.limits.parsing)
        try:  # what is raised here, falcon hands to ErrorRenderer
            out = negotiation.choose_rendering(req.get_header("Accept"))
            check_request_head(req, self.limits)
            negotiation.check_version(req.get_header("User-Agent"))
            answer(req, resp, "GET" if req.method == "HEAD" else req.method, out, ctx)
            if req.method == "HEAD" and resp.stream is not None:
                # HEAD announces the Content-Length its GET would (RFC 9110 9.3.2): a streamed
                # rendering is produced and measured here, where its errors are still
                # answered, not kept. falcon sends no body for HEAD and measures resp.data.
                stream, resp.stream = resp.stream, None
                assert isinstance(stream, Iterable)  # _send streams only a Rendered body
                resp.content_length = sum(len(chunk) for chunk in stream)
        finally:
            LIMITS.reset(token)

    @staticmethod
    def _send(resp: falcon.Response, status: str, r: Rendered) -> None:
        resp.status = status
        resp.content_type = r.content_type
        for name, value in r.headers:
            resp.append_header(name, value)
        if isinstance(r.body, (bytes, bytearray)):
            resp.data = bytes(r.body)
        else:
            resp.stream = r.body

    # ------------------------------------------------------------------ request reading
    def _message(self, req: falcon.Request, ctx: Context) -> Message:
        length = req.content_length
        if length is not None and length > self.max_body:
            self._discard(req.bounded_stream, length)
            raise errors.PayloadTooLarge(
                f"the request body of {length} bytes is above the limit of {self.max_body} bytes"
            )
        if length:
            body = req.bounded_stream.read(self.max_body + 1)
        elif length is None and req.get_header("Transfer-Encoding"):
            body = req.stream.read(self.max_body + 1)  # chunked: the server de-chunks it
        else:
            body = b""
        if len(body) > self.max_body:
            self._discard(req.stream, None)
            raise errors.PayloadTooLarge(
                f"the request body is above the limit of {self.max_body} bytes"
            )
        headers = {k.lower(): v for k, v in req.headers.items()}
        return Message(headers=headers, body=body, base_url=ctx.base_url)

    def _discard(self, stream, length: int | None) -> None:
        """Read and drop a body refused as too large, up to `max_discard` bytes: a client
        that sends its whole body before reading the answer (most do) would otherwise find the
        connection closed under it and never see the 413. Above the bound it is closed."""
        if length is not None and length > self.max_discard:
            return
        left = self.max_discard
        while left > 0:
            chunk = stream.read(min(left, 1 << 16))
            if not chunk:
                return
            left -= len(chunk)

    def _parse(self, req: falcon.Request, msg: Message, what: Callable[[Rendering], object]):
        r = negotiation.request_rendering(req.get_header("Content-Type"), bool(msg.body))
        return what(r)

    def _filter(self, req: falcon.Request, msg: Message) -> Filter:
        flt = Filter()
        if not _has_occi_headers(msg) and not any(
            p in req.params for p in ("category", "attribute", "value")
        ):
            return flt  # nothing to parse: most collection reads
        for ref in _HEADER_RENDERING.parse_categories(
            Message(headers=msg.headers, base_url=msg.base_url)
        ):
            flt.categories.append(ref.id)
        flt.categories.extend(req.get_param_as_list("category") or [])
        flt.attributes.update(
            _HEADER_RENDERING.parse_attribute_filter(Message(headers=msg.headers))
        )
        names = req.get_param_as_list("attribute") or []
        values = req.get_param_as_list("value") or []
        if len(names) != len(values):
            raise errors.BadRequest("give each ?attribute= a ?value= (they pair up in order)")
        for name in names:
            if not valid_attribute_name(name):
                raise errors.BadRequest(
                    f"?attribute={name[:60]!r} is not an attribute name (e.g. occi.core.title)"
                )
        flt.attributes.update(zip(names, values, strict=True))
        check_parsed([flt.categories, flt.attributes])
        _check_count(len(flt.categories), self.limits.parsing.categories, "categories")
        _check_count(len(flt.attributes), self.limits.parsing.attributes, "attributes")
        return flt

    def _page(self, req: falcon.Request) -> Page:
        number = req.get_param("number")
        page = req.get_param("page")
        if number is None and page is None:
            return Page()
        try:
            n = _whole(number) if number is not None else self.service.max_page_size
            p = _whole(page) if page is not None else 1
        except ValueError:
            raise errors.BadRequest(
                "page and number must be whole numbers, e.g. ?page=1&number=50"
            ) from None
        if n < 1 or p < 1:
            raise errors.BadRequest("page and number start at 1")
        if n <= self.service.max_page_size and (p - 1) * n > MAX_OFFSET:
            raise errors.BadRequest(
                f"page {p} of {n} entities is beyond any collection (the offset must stay "
                f"below 2^63)"
            )
        return Page(number=n, page=p)

    # ------------------------------------------------------------------ dispatch
    def _dispatch(
        self, req: falcon.Request, resp: falcon.Response, method: str, out: Rendering, ctx: Context
    ) -> None:
        path = req.path or "/"  # falcon has percent-decoded it once already
        check_path(path)
        if method == "OPTIONS":
            resp.status = "204 No Content"
            resp.set_header("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
            return None
        action = req.get_param("action")
        if path.endswith("/"):
            return self._collection(req, resp, method, path, action, out, ctx)
        return self._entity(req, resp, method, path, action, out, ctx)

    def _health(self, req, resp, method: str, out: Rendering, ctx: Context) -> None:
        """For load balancers: 200 when this process reaches the database and is not fenced."""
        if method != "GET":
            raise self._not_allowed(HEALTH_PATH, ["GET", "HEAD"])
        database = self.service.store.ping()
        runner = self.service.runner
        fenced = runner is not None and not runner.healthy()
        ok = database and not fenced
        body = {
            "status": "ok" if ok else "unavailable",
            "database": "reachable" if database else "unreachable",
            "server": runner.server_id if runner is not None else None,
            "jobs": "fenced" if fenced else "running",
        }
        resp.status = "200 OK" if ok else "503 Service Unavailable"
        resp.content_type = "application/json"
        resp.data = json.dumps(body).encode()

    def _not_allowed(self, path: str, allowed: list[str]) -> errors.MethodNotAllowed:
        return errors.MethodNotAllowed(f"{path} does not support this method", allowed)

    # ------------------------------------------------------------------ /-/
    def _query_interface(self, req, resp, method, out: Rendering, ctx: Context) -> None:
        msg = self._message(req, ctx)
        if method == "GET":
            refs = _HEADER_RENDERING.parse_categories(Message(headers=msg.headers))
            refs += self.service.category_refs(who(req), req.get_param_as_list("category") or [])
            if not refs:
                return self._send(resp, "200 OK", self._whole_model(out, ctx, who(req).project))
            coll = self.service.categories(who(req), refs)
            return self._send(resp, "200 OK", out.render_categories(coll, ctx))
        if method == "POST":
            refs = self._parse(req, msg, lambda r: r.parse_categories(msg))
            self.service.add_user_mixins(who(req), refs)
            return self._send(resp, "200 OK", out.render_ok(ctx))
        if method == "DELETE":
            refs = self._parse(req, msg, lambda r: r.parse_categories(msg))
            self.service.remove_user_mixins(who(req), refs)
            return self._send(resp, "200 OK", out.render_ok(ctx))
        raise self._not_allowed("the query interface", ["GET", "HEAD", "POST", "DELETE"])

    def _whole_model(self, out: Rendering, ctx: Context, project: str | None) -> Rendered:
        """The unfiltered query interface, rendered once per registry and media type: the
        model only changes when the registry does (user mixins, saved images)."""
        reg = self.service.registry(project=project)
        key = (out.media_types[0], ctx.base_url)
        cache = self._model_cache
        if cache.get("registry") is not reg:
            cache.clear()
            cache["registry"] = reg
        cached = cache.get(key)
        if isinstance(cached, Rendered):
            return cached
        r = out.render_categories(reg.collection(), ctx)
        if not isinstance(r.body, (bytes, bytearray)):
            r = Rendered(r.content_type, list(r.headers), b"".join(r.body))
        if len(cache) < 64:  # base URLs come from Host headers: bound the cache
            cache[key] = r
        return r

    # ------------------------------------------------------------------ collections
    def _collection(self, req, resp, method, path, action, out: Rendering, ctx: Context) -> None:
        msg = self._message(req, ctx)
        reg = self.service.registry(project=who(req).project)
        target = self.service.collection_target(path, reg)
        is_mixin = isinstance(target, Mixin)
        req.context.route = "mixin_collection" if is_mixin else "collection"  # for metrics
        if method == "GET" and out.locations_only:
            locations = self.service.list_locations(
                who(req), path, self._filter(req, msg), self._page(req), reg, _wants_fresh(req)
            )
            return self._send(resp, "200 OK", out.render_locations(locations, ctx))
        if method == "GET":
            flt, page = self._filter(req, msg), self._page(req)
            if page.number is not None and out.renders_pieces:
                # a page: its entities rendered one by one, kept while they stay the same
                pieces = self.service.render_page(
                    who(req),
                    path,
                    flt,
                    page,
                    (out.media_types[0], ctx.base_url),
                    lambda entity: out.render_piece(entity, ctx),
                    reg,
                    _wants_fresh(req),
                )
                return self._send(resp, "200 OK", out.render_pieces(pieces, ctx))
            if out.renders_pieces and not _wants_fresh(req):
                # the whole collection: streamed, each entity as kept while it is the same
                stream = self.service.render_stream(
                    who(req),
                    path,
                    flt,
                    (out.media_types[0], ctx.base_url),
                    lambda entity: out.render_piece(entity, ctx),
                    reg,
                )
                return self._send(resp, "200 OK", out.render_pieces(stream, ctx))
            entities, _ = self.service.list_collection(who(req), path, flt, page)
            return self._send(resp, "200 OK", out.render_entities(entities, ctx))
        if method == "POST" and action is not None:
            inv = (
                self._parse(req, msg, lambda r: r.parse_action(msg))
                if msg.body or _has_occi_headers(msg)
                else ActionInvocation(None)
            )
            done = self.service.act_on_collection(
                who(req), path, action, inv, self._filter(req, Message())
            )
            return self._send(resp, "200 OK", out.render_entities(done, ctx))
        if method == "POST":
            if is_mixin:
                locs = self._parse(req, msg, lambda r: r.parse_locations(msg))
                members = self.service.associate(who(req), path, locs)
                return self._send(resp, "200 OK", out.render_entities(members, ctx))
            if target is None:
                raise self._not_allowed(path, ["GET", "HEAD", "DELETE"])
            entities = self._parse(req, msg, lambda r: r.parse_entities(msg))
            created = self.service.create(audited_with_work(req), path, entities)
            return self._created(resp, out, ctx, created)
        if method == "PUT":
            if not is_mixin:
                raise self._not_allowed(path, ["GET", "HEAD", "POST", "DELETE"])
            locs = (
                self._parse(req, msg, lambda r: r.parse_locations(msg))
                if msg.body or _has_occi_headers(msg)
                else []
            )
            members = (
                self.service.associate(who(req), path, locs, replace_all=True)
                if locs
                else self._clear(req, path)
            )
            return self._send(resp, "200 OK", out.render_entities(members, ctx))
        if method == "DELETE":
            if is_mixin:
                locs = None
                if msg.body or "x-occi-location" in msg.headers:
                    locs = self._parse(req, msg, lambda r: r.parse_locations(msg))
                self.service.dissociate(who(req), path, locs)
            else:
                self.service.delete_collection(who(req), path, self._filter(req, msg))
            return self._send(resp, "200 OK", out.render_ok(ctx))
        allowed = (
            ["GET", "HEAD", "POST", "PUT", "DELETE"]
            if is_mixin
            else ["GET", "HEAD", "POST", "DELETE"]
        )
        raise self._not_allowed(path, allowed)

    def _clear(self, req: falcon.Request, path: str) -> list[Entity]:
        self.service.dissociate(who(req), path, None)
        return []

    def _send_entity(self, resp, status: str, out: Rendering, ctx: Context, entity: Entity) -> None:
        resp.set_header("ETag", etag(entity))
        self._send(resp, status, out.render_entity(entity, ctx))

    def _created(self, resp, out: Rendering, ctx: Context, created: list[Entity]) -> None:
        locations: list[str] = []
        for e in created:
            assert e.location is not None  # stored entities have their location
            locations.append(e.location)
        resp.set_header("Location", ctx.url(locations[0]))
        for location in locations:
            resp.append_header("X-OCCI-Location", ctx.url(location))
        if len(created) == 1 and out.media_types[0] != "text/uri-list":
            return self._send_entity(resp, "201 Created", out, ctx, created[0])
        return self._send(resp, "201 Created", out.render_locations(locations, ctx))

    # ------------------------------------------------------------------ entities
    def _entity(self, req, resp, method, path, action, out: Rendering, ctx: Context) -> None:
        kind, entity_id = self._address(path, method, who(req).project)
        if method == "GET":
            none_match = req.if_none_match
            entity = self.service.get(
                who(req), kind, entity_id, fresh=bool(none_match) or _wants_fresh(req)
            )
            resp.set_header("ETag", etag(entity))
            if none_match and str(version(entity)) in [t for t in none_match if t != "*"]:
                resp.status = "304 Not Modified"
                return None
            return self._send(resp, "200 OK", out.render_entity(entity, ctx))
        msg = self._message(req, ctx)
        if_match = expected(req, none_match=False)
        if method == "POST" and action is not None:
            inv = (
                self._parse(req, msg, lambda r: r.parse_action(msg))
                if msg.body or _has_occi_headers(msg)
                else ActionInvocation(None)
            )
            result = self.service.act(
                audited_with_work(req), kind, entity_id, action, inv, if_match
            )
            if isinstance(result, Mixin):
                return self._send(resp, "200 OK", out.render_mixin(result, ctx))
            return self._send_entity(resp, "200 OK", out, ctx, result)
        if method == "POST":
            entities = self._parse(req, msg, lambda r: r.parse_entities(msg))
            if len(entities) != 1:
                raise errors.BadRequest("update one entity at a time")
            updated = self.service.update(who(req), kind, entity_id, entities[0], if_match)
            return self._send_entity(resp, "200 OK", out, ctx, updated)
        if method == "PUT":
            entities = self._parse(req, msg, lambda r: r.parse_entities(msg))
            if len(entities) != 1:
                raise errors.BadRequest("PUT carries exactly one entity")
            entity, created = self.service.put(
                who(req), kind, entity_id, entities[0], expected(req, none_match=True)
            )
            if created:
                return self._created(resp, out, ctx, [entity])
            return self._send_entity(resp, "200 OK", out, ctx, entity)
        if method == "DELETE":
            self.service.delete(who(req), kind, entity_id, if_match)
            return self._send(resp, "200 OK", out.render_ok(ctx))
        raise self._not_allowed(path, ["GET", "HEAD", "POST", "PUT", "DELETE"])

    def _address(self, path: str, method: str, project: str | None) -> tuple[Kind, str]:
        """The kind and id of the entity a path names (through the kinds' locations): 404 when
        no kind's collection holds it."""
        kind = self.service.registry(project=project).kind_for_path(path)
        entity_id = path.rsplit("/", 1)[-1]
        if kind is None or not entity_id:
            if method == "PUT":
                raise errors.NotFound(f"{path} is not inside a kind collection")
            raise errors.NotFound(f"nothing exists at {path}")
        return kind, entity_id


def audited_with_work(req: falcon.Request) -> RequestContext:
    """The request's context, letting the service record its audit event in the transaction
    that records its platform work done (a create's, an action's): one transaction fewer
    per request. The audit middleware records the event when the service did not, or when
    the answer's status is not the one it recorded (occi.api.audit)."""
    ctx = replace(who(req), audit=AuditSlot())
    req.context.occi_context = ctx
    return ctx


def who(req: falcon.Request) -> RequestContext:
    """The request's context, made once per request by the authentication middleware
    (occi.api.auth) under the request id the RequestObserver gave it (occi.api.metrics)."""
    made = getattr(req.context, "occi_context", None)
    if made is None:  # a path left open (/healthz, /metrics) never asks
        raise RuntimeError(f"no request context for {req.path}: the path is not authenticated")
    return made


def etag(entity: Entity) -> str:
    """An entity's ETag: its version, which every stored change raises."""
    return f'"{version(entity)}"'


def expected(req: falcon.Request, *, none_match: bool) -> Expected | None:
    """What If-Match (and, with `none_match`, If-None-Match: *) expect of the entity, as the
    service checks it. An ETag that is not one of this server's (a version) matches nothing."""
    tags = req.if_match
    versions: frozenset[int] | None = None
    exists: bool | None = None
    if tags is not None:
        if "*" in tags:
            exists = True
        else:
            versions = frozenset(int(t) for t in tags if t.isdigit() and len(t) < 19)
    if none_match and "*" in (req.if_none_match or []):
        if exists:  # If-Match: * and If-None-Match: * together: nothing satisfies both
            versions = frozenset()
        exists = False
    if versions is None and exists is None:
        return None
    return Expected(versions=versions, exists=exists)


class FixedPath:
    """A path of the server's own (the query interface, the health check) as a falcon route:
    each responder has the request checked like any other (OcciResource.serve) and answered by
    `answer`, which refuses the methods it does not take with the server's 405."""

    def __init__(self, occi: OcciResource, answer: Answer):
        self.occi = occi
        self.answer = answer

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.occi.serve(req, resp, self.answer)

    on_head = on_post = on_put = on_patch = on_delete = on_options = on_get


#: the largest row offset a page may ask for (SQL OFFSET is a signed 64-bit number)
MAX_OFFSET = 2**63 - 1
#: longest ?page= or ?number= read (a number of more digits is beyond any collection)
_MAX_DIGITS = 19


@dataclass(frozen=True)
class RequestLimits:
    """The work one request may ask for: its headers here, what parsers read in `parsing`."""

    #: header fields in one request
    headers: int = 200
    #: bytes of all header names and values of one request
    header_bytes: int = 65536
    parsing: Limits = field(default_factory=Limits)

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        return cls(
            headers=settings.max_headers,
            header_bytes=settings.max_header_bytes,
            parsing=Limits(
                parameters=settings.max_text_parameters,
                categories=settings.max_categories,
                attributes=settings.max_attributes,
            ),
        )


def check_request_head(req: falcon.Request, limits: RequestLimits) -> None:
    """400 for a request with more header fields, or more header bytes, than the limits."""
    headers = req.headers
    if len(headers) > limits.headers:
        raise errors.BadRequest(
            f"the request has {len(headers)} header fields, above the limit of {limits.headers} "
            "(the server's max_headers setting)"
        )
    size = sum(len(k) + len(v) for k, v in headers.items())
    if size > limits.header_bytes:
        raise errors.BadRequest(
            f"the request headers hold {size} bytes, above the limit of {limits.header_bytes} "
            "(the server's max_header_bytes setting)"
        )


def check_path(path: str) -> None:
    """400 for a path a client or proxy would resolve to another one (dot segments), or one
    holding characters no location holds (controls, lone surrogates)."""
    if any(seg in (".", "..") for seg in path.split("/")):
        raise errors.BadRequest(
            "the path has a '.' or '..' segment: send the path it stands for (no location "
            "holds one)"
        )
    if _PATH_UNSAFE.search(path):
        raise errors.BadRequest("the path holds control characters or lone surrogates")


_PATH_UNSAFE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def _whole(text: str) -> int:
    """A query-string whole number, refusing more digits than any 64-bit number has."""
    text = text.strip()
    if len(text) > _MAX_DIGITS:
        raise ValueError(text)
    return int(text)


def _check_count(count: int, limit: int, what: str) -> None:
    if count > limit:
        raise errors.BadRequest(f"the request names more than {limit} {what}")


def _status_of(exc: falcon.HTTPError) -> tuple[int, str]:
    status = exc.status if isinstance(exc.status, str) else f"{exc.status}"
    code = int(str(status).split()[0])
    return code, str(status).partition(" ")[2] or "Error"


def _wants_fresh(req: falcon.Request) -> bool:
    """`Cache-Control: no-cache` or `max-age=0` (RFC 9111 5.2.1), or `Pragma: no-cache`: the
    client wants what the database holds now, not the server's memory of a recent read."""
    directives = (req.get_header("Cache-Control") or "").lower()
    if "no-cache" in directives or "max-age=0" in directives.replace(" ", ""):
        return True
    return "no-cache" in (req.get_header("Pragma") or "").lower()


def _has_occi_headers(msg: Message) -> bool:
    return any(
        h in msg.headers for h in ("category", "x-occi-attribute", "link", "x-occi-location")
    )


_SPECIAL_CASE = {"occi": "OCCI", "etag": "ETag", "www": "WWW"}


@functools.lru_cache(maxsize=512)  # a server sends a few dozen names, on every answer
def _canonical_header(name: str) -> str:
    """'x-occi-attribute' -> 'X-OCCI-Attribute': the spelling the OCCI texts use."""
    return "-".join(_SPECIAL_CASE.get(p, p.capitalize()) for p in name.split("-"))


def with_canonical_headers(app):
    """WSGI wrapper restoring conventional header-name case (falcon emits lower case).

    HTTP header names are case-insensitive, but OCCI clients written against the spec's
    examples and shell scripts grepping for `X-OCCI-Location:` are not always."""

    def wrapped(environ, start_response):
        def start(status, headers, exc_info=None):
            return start_response(status, [(_canonical_header(n), v) for n, v in headers], exc_info)

        return app(environ, start)

    return wrapped


def create_app(
    service: Service,
    *,
    max_body: int = 1 << 20,
    base_url: str = "",
    server_header: bool = True,
    max_discard: int = 64 << 20,
    limits: RequestLimits | None = None,
    cors_origins: str = "",
    auth: AuthMiddleware | None = None,
    inventory: Any = None,
    ec2: Any = None,
) -> falcon.App:
    """A falcon WSGI app serving `service`. `server_header=False` when the WSGI server already
    sends SERVER as its own Server header (see occi.api.wsgi). `cors_origins`: the browser
    origins besides its own that may use it (occi.api.cors). `auth` authenticates every
    request but OPEN_PATHS (occi.api.auth); None: no authentication (auth = none, the project
    `default`). `inventory`: an occi.inventory.service.InventoryService, served as the JSON
    admin API under /-/admin/ (occi.api.admin); None: no admin API. `ec2`: an
    occi.ec2.front.Ec2Front, served under /ec2/ with its own authentication (SigV4); None:
    no EC2 API."""
    if auth is None:
        auth = AuthMiddleware(None)
    auth.open_paths = OPEN_PATHS
    observer = RequestObserver(QUERY_PATHS, HEALTH_PATH)
    audit = AuditMiddleware(service.store, QUERY_PATHS)
    cors = CorsMiddleware(cors_origins, base_url)  # before authentication: preflights skip it
    middleware: list[Any] = [observer, audit, cors, auth]
    app = falcon.App(media_type=negotiation.DEFAULT_TYPE, middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = False
    app.req_options.keep_blank_qs_values = False
    app.req_options.auto_parse_qs_csv = False
    handler = OcciResource(
        service,
        max_body=max_body,
        base_url=base_url,
        server_header=server_header,
        max_discard=max_discard,
        limits=limits,
    )
    app.add_sink(handler, prefix="/")
    if ec2 is not None:  # added after the OCCI sink: it wins for its paths
        from occi.ec2.front import PATHS, PREFIX

        app.add_sink(ec2, prefix=re.compile(PATHS))
        auth.open_prefixes = (*auth.open_prefixes, PREFIX + "/")
        if PREFIX not in auth.open_paths:
            auth.open_paths = auth.open_paths | {PREFIX}
    for path in QUERY_PATHS:  # routes: falcon looks at routes before sinks
        app.add_route(path, FixedPath(handler, handler._query_interface))
    app.add_route(HEALTH_PATH, FixedPath(handler, handler._health))
    if inventory is not None:
        from occi import console
        from occi.api import admin

        admin.add_routes(app, inventory, max_body)
        auth.open_prefixes = (*auth.open_prefixes, *console.mount(app, service, inventory, auth))
    app.add_route(  # a route: falcon looks at routes before sinks
        METRICS_PATH,
        MetricsResource([StoreCollector(service.store)], SERVER if server_header else None),
    )

    renderer = ErrorRenderer(base_url, server_header)
    # one handler for every error: the service's, the renderings', falcon's own, and bugs
    for kind in (Exception, falcon.HTTPError, errors.OcciError):
        app.add_error_handler(kind, renderer)
    return app


#: the response header naming an error's machine-readable code, in every rendering
ERROR_CODE_HEADER = "X-OCCI-Error-Code"


class ErrorRenderer:
    """falcon's error handler for every exception a request raises: an answer with the error's
    status, its message and its machine-readable code (occi.errors), in the rendering the
    client's Accept chose (the default one when it chose none we have). A bug is logged and
    answers 500 with no trace of its internals."""

    def __init__(self, base_url: str = "", server_header: bool = True):
        self.base_url = base_url.rstrip("/")
        self.server_header = server_header

    def __call__(self, req: falcon.Request, resp: falcon.Response, ex: Exception, params) -> None:
        ctx = Context(self.base_url or req.prefix)
        try:
            out = negotiation.choose_rendering(req.get_header("Accept"))
        except errors.OcciError:
            out = negotiation.choose_rendering(None)  # the default, until Accept is read
        admin = (req.path or "").startswith(ADMIN_PATH)
        if admin:  # the JSON admin API answers JSON only
            out = rendering.require("application/json")
        headers: dict[str, str] = {}
        if isinstance(ex, errors.OcciError):
            status, reason, message, code = ex.status, ex.reason, ex.message, ex.code
            headers.update(ex.headers)
            if ex.location:  # made anyway, e.g. an entity in error after a failed create
                headers["Location"] = ctx.url(ex.location)
        elif isinstance(ex, falcon.HTTPError):  # falcon's own: no route, a header it refused
            status, reason = _status_of(ex)
            message = ex.description or ex.title or reason
            code = errors.code_for_status(status)
            headers.update(ex.headers or {})  # e.g. Allow on a 405 of /metrics
        elif isinstance(ex, ParseError):
            status, reason, message, code = 400, "Bad Request", str(ex), "unparsable"
        elif isinstance(ex, Unrenderable):
            # GFD.229: text/uri-list is for listings only, "otherwise a Bad Request MUST be
            # returned"; the message is sent as text/plain, which every client can read
            status, reason, message, code = 400, "Bad Request", str(ex), "unrenderable"
            out = rendering.require("text/plain")
        elif isinstance(ex, _BODY_ERRORS):
            status, reason, code = 400, "Bad Request", "unreadable_body"
            message = f"the request body cannot be read: {type(ex).__name__} {ex}".strip()
        else:  # a bug: log it, answer without leaking internals
            log.error("unhandled error on %s %s", req.method, req.path, exc_info=ex)
            status, reason, code = 500, "Internal Server Error", errors.OcciError.code
            message = "the server failed to handle this request; the error is in its log"
        req.context.error = (code, message)  # for the audit log (occi.api.audit)
        resp.stream = None
        resp.data = None
        if self.server_header:
            resp.set_header("Server", SERVER)
        for name, value in headers.items():
            resp.set_header(name, value)
        resp.set_header(ERROR_CODE_HEADER, code)
        OcciResource._send(
            resp, f"{status} {reason}", out.render_error(status, reason, message, ctx, code)
        )
        if admin:
            resp.content_type = "application/json"

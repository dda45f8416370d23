"""The HTTP side of occi.metrics: a falcon middleware giving each request its id and counting
it, and the `GET /metrics` resource.

Routes are a small fixed set of labels (query_interface, collection, mixin_collection, entity,
healthz, metrics, admin, other), never the path: entity ids in labels would grow without bound.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

import falcon

from occi import metrics

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
REQUEST_ID_HEADER = "X-Request-Id"
#: an incoming X-Request-Id is kept when it looks like an id; anything else is replaced
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


class RequestObserver:
    """falcon middleware: the request id (header, log records) and the request metrics.

    The id is the client's (or a proxy's) `X-Request-Id` when that is a plain token of at most
    128 characters, else 32 new random hex digits; every response returns it, errors included. A body that
    is streamed after the handler returns is timed, and logs under the id, to its last byte.
    """

    def __init__(self, query_paths: Iterable[str], health_path: str):
        self.query_paths = frozenset(query_paths)
        self.health_path = health_path
        metrics.install_request_id_logging()

    def route(self, req: falcon.Request) -> str:
        named = getattr(req.context, "route", None)  # the handler may know better
        if named:
            return named
        path = req.path or "/"
        if path in self.query_paths:
            return "query_interface"
        if path == self.health_path:
            return "healthz"
        if path == METRICS_PATH:
            return "metrics"
        if not path.startswith("/"):
            return "other"
        return "collection" if path.endswith("/") else "entity"

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = req.get_header(REQUEST_ID_HEADER)
        rid = given if given and REQUEST_ID_RE.fullmatch(given) else os.urandom(16).hex()
        req.context.request_id = rid
        req.context.request_started = time.perf_counter()
        req.context.request_id_token = metrics.REQUEST_ID.set(rid)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        ctx = req.context
        rid = getattr(ctx, "request_id", None) or os.urandom(16).hex()
        resp.set_header(REQUEST_ID_HEADER, rid)
        method = req.method if req.method in METHODS else "other"
        route = self.route(req)
        status = resp.status_code
        started = getattr(ctx, "request_started", None) or time.perf_counter()

        def done() -> None:
            seconds = time.perf_counter() - started
            metrics.observe_request(route, method, status, seconds)
            log.debug("%s %s -> %d in %.1f ms", req.method, req.path, status, seconds * 1000)

        if resp.stream is not None and req.method != "HEAD" and not hasattr(resp.stream, "read"):
            resp.stream = _Timed(resp.stream, rid, done)
        else:
            done()
        token = getattr(ctx, "request_id_token", None)
        if token is not None:
            metrics.REQUEST_ID.reset(token)
            ctx.request_id_token = None


class _Timed:
    """A streamed body that runs under its request's id and reports when it ends."""

    def __init__(self, body: Iterable[bytes], request_id: str, done: Any):
        self._body = body
        self._it: Iterator[bytes] = iter(body)
        self._rid = request_id
        self._done = done

    def __iter__(self) -> _Timed:
        return self

    def __next__(self) -> bytes:
        token = metrics.REQUEST_ID.set(self._rid)
        try:
            return next(self._it)
        except StopIteration:
            self._finish()
            raise
        finally:
            metrics.REQUEST_ID.reset(token)

    def _finish(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done()

    def close(self) -> None:
        token = metrics.REQUEST_ID.set(self._rid)
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
            self._finish()
        finally:
            metrics.REQUEST_ID.reset(token)


class MetricsResource:
    """`GET /metrics`: Prometheus' text format (OpenMetrics when the scraper asks for it).

    It reveals counts only, no names or ids; a production deployment still limits it to the
    monitoring network at its proxy."""

    def __init__(self, collectors: Iterable[Any], server: str | None = None):
        self.collectors = list(collectors)
        self.server = server

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, content_type = metrics.exposition(req.get_header("Accept"), self.collectors)
        if self.server:
            resp.set_header("Server", self.server)
        resp.content_type = content_type
        resp.data = body

    on_head = on_get

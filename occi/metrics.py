"""What the server tells its operators: Prometheus metrics, and the request id on log records.

Metrics of one process (requests, latencies, job run times, database errors) are counters and
histograms of prometheus_client, created on first use. Under `occi-server` they live in
prometheus_client's multi-process mode: the gunicorn master exports PROMETHEUS_MULTIPROC_DIR
before it forks, each worker writes its values to files there, and a scrape answered by any
worker adds up all of them (see `prepare_multiprocess_dir`). Without that variable (tests, a
single process) they stay in this process's memory. What the database holds (jobs by state,
entities by kind and state) is read from SQL at scrape time instead (`StoreCollector`), so every
process reports the same numbers.

The request id lives in a context variable that the HTTP layer sets for each request; a log
record factory copies it onto every record (`%(request_id)s`, "-" outside requests).

No HTTP framework here: occi.api.metrics holds the falcon side. Importing this module does not
import prometheus_client, so the gunicorn master can set the directory first.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from occi.store.base import Store

log = logging.getLogger(__name__)

#: the variable prometheus_client reads (once, when it is imported) to choose multi-process mode
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: the format of the server's own log lines (occi.cli and occi.api.wsgi)
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s [%(request_id)s]: %(message)s"
#: gunicorn's default access log line plus the response's X-Request-Id
ACCESS_LOG_FORMAT = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({x-request-id}o)s'
)
#: hypervisor operations take from milliseconds (simulator) to minutes (a libvirt create)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
JOB_STATUSES = ("pending", "running", "done", "failed")

# ---------------------------------------------------------------------------------------------
# Request ids on log records
# ---------------------------------------------------------------------------------------------

REQUEST_ID: ContextVar[str] = ContextVar("occi_request_id", default="-")


def install_request_id_logging() -> None:
    """Give every log record of this process a `request_id` attribute: the id of the request
    the logging thread serves, or "-". Idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "occi_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        return record

    factory.occi_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure_logging(level: str) -> None:
    """The server's logging: LOG_FORMAT on stderr, with request ids."""
    install_request_id_logging()
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)


# ---------------------------------------------------------------------------------------------
# The metrics of this process
# ---------------------------------------------------------------------------------------------


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, values

        wanted = bool(os.environ.get(MULTIPROC_ENV))
        self.multiprocess = wanted and values.ValueClass is not values.MutexValue
        if wanted and not self.multiprocess:
            log.warning(
                "prometheus_client was imported before %s was set: this process reports "
                "only its own metrics",
                MULTIPROC_ENV,
            )
        #: this process's metrics (not the global default registry: tests build many apps)
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "occi_http_requests",
            "HTTP requests answered, by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "occi_http_request_duration_seconds",
            "Time from receiving a request to sending the last byte of its answer",
            ["route", "method"],
            registry=self.registry,
        )
        #: (route, method, status) -> the two labelled children (a bounded set)
        self.request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.job_duration = Histogram(
            "occi_job_duration_seconds",
            "Time one attempt of a hypervisor job took: the platform call and storing its result",
            ["operation"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.database_errors = Counter(
            "occi_database_errors",
            "Transactions that failed because the database was unavailable (answered 503)",
            registry=self.registry,
        )


_metrics: _Metrics | None = None
_metrics_lock = threading.Lock()


def _get() -> _Metrics:
    global _metrics
    m = _metrics
    if m is None:
        with _metrics_lock:
            if _metrics is None:
                _metrics = _Metrics()
            m = _metrics
    return m


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    m = _metrics or _get()
    key = (route, method, status)
    children = m.request_children.get(key)
    if children is None:  # labels() costs more than the update: keep the few children
        children = (m.requests.labels(route, method, str(status)), m.latency.labels(route, method))
        m.request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def database_error() -> None:
    _get().database_errors.inc()


def timed_jobs(execute: Callable[..., None]) -> Callable[..., None]:
    """`execute(job, runner)` observing how long each job attempt takes, by operation."""

    def timed(job: Any, *args: Any) -> None:
        started = time.perf_counter()
        try:
            execute(job, *args)
        finally:
            _get().job_duration.labels(job.operation).observe(time.perf_counter() - started)

    return timed


class StoreCollector:
    """Jobs by state and entities by kind and state, read from SQL when scraped: the same
    numbers whichever process answers. `occi_database_up` is 0 when the read failed."""

    def __init__(self, store: Store):
        self.store = store

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("occi_database_up", "1 when the scrape could read the database")
        try:
            with self.store.begin(readonly=True) as tx:
                jobs = tx.jobs.counts()
                entities = tx.count_by_kind_state()
        except Exception as exc:  # the database is down: say so, keep the other metrics
            log.warning("metrics: cannot read the database: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        by_status = GaugeMetricFamily(
            "occi_jobs", "Hypervisor jobs in the database, by status", labels=["status"]
        )
        for status in sorted(set(JOB_STATUSES) | set(jobs)):
            by_status.add_metric([status], jobs.get(status, 0))
        yield by_status
        by_kind = GaugeMetricFamily(
            "occi_entities",
            "Entities in the database, by kind and state (the occi.<kind>.state attribute; "
            '"none" for kinds without one)',
            labels=["kind", "state"],
        )
        for (kind, state), n in sorted(entities.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            by_kind.add_metric([kind, state or "none"], n)
        yield by_kind


class _Scrape:
    def __init__(self, sources: Iterable[Any]):
        self.sources = list(sources)

    def collect(self) -> Iterator[Any]:
        for source in self.sources:
            yield from source.collect()


def exposition(accept: str | None, collectors: Iterable[Any] = ()) -> tuple[bytes, str]:
    """The scrape: this process's metrics (every worker's, in multi-process mode) and those of
    `collectors`, in the text format `accept` asks for. Returns (body, content type)."""
    from prometheus_client.exposition import choose_encoder

    m = _get()
    sources: list[Any] = []
    if m.multiprocess:
        from prometheus_client.multiprocess import MultiProcessCollector

        sources.append(MultiProcessCollector(None))
    else:
        sources.append(m.registry)
    sources.extend(collectors)
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_Scrape(sources)), content_type  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Multi-process mode under gunicorn (the master's side)
# ---------------------------------------------------------------------------------------------


def prepare_multiprocess_dir(path: str = "") -> tuple[str, bool]:
    """Before gunicorn forks: a directory for the workers' metric files, emptied of an earlier
    run's files, exported as PROMETHEUS_MULTIPROC_DIR. `path` empty: a fresh private temporary
    directory. Returns the directory and whether it is temporary (`remove_multiprocess_dir`)."""
    if path:
        os.makedirs(path, mode=0o700, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)
        temporary = False
    else:
        path = tempfile.mkdtemp(prefix="occi-metrics-")
        temporary = True
    os.environ[MULTIPROC_ENV] = path
    return path, temporary


def remove_multiprocess_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def worker_exited(server: Any, worker: Any) -> None:
    """gunicorn's child_exit hook: a dead worker's live gauges go; its counters stay summed."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

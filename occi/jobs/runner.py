"""The job runner of one server process: heartbeats, leases, claiming and running jobs.

Every server process (each gunicorn worker) registers itself in the `servers` table, heartbeats,
and runs worker threads that claim jobs from SQL. A server silent for `dead_after` seconds is
declared dead by any other, and its running jobs go back to the queue. A server that cannot
reach the database for that long fences itself: it claims nothing and finishes nothing until it
has registered again, so it never acts on state another server has taken over.

A job whose platform task takes long (a backend answering Pending, see occi.jobs.execution)
does not hold a worker thread: it is parked in the queue, due again when the task should be
polled, and claimed then like any other job (by any server).

Touches the store (through its JobTx contract) and the `execute` it is given (occi.jobs.execution);
no HTTP, no SQL.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from occi import metrics
from occi.errors import ServiceUnavailable
from occi.store.base import Job, Store

log = logging.getLogger(__name__)

FINISHED = ("done", "failed")
_context = threading.local()


def _failed(what: str, exc: Exception) -> None:
    """A failure in a loop that runs every second: an unreachable database is logged once per
    outage by the store (occi.store.health), so here only at debug level; anything else is
    logged with its traceback."""
    if isinstance(exc, ServiceUnavailable):
        log.debug("%s: %s", what, exc)
    else:
        log.error("%s", what, exc_info=exc)


def in_job() -> bool:
    """True while this thread claims, runs or records a job: the job's own SQL, as opposed to
    the SQL of the request that queued it (the statement-count test tells them apart)."""
    return getattr(_context, "depth", 0) > 0


@dataclass
class JobSettings:
    #: seconds a request waits for its jobs before answering with the state so far
    wait: float = 10.0
    #: lease on a running job; renewed with every heartbeat
    lease: float = 15.0
    heartbeat: float = 1.0
    #: a server whose heartbeat is older than this is dead; its jobs are claimed by others
    dead_after: float = 6.0
    threads: int = 2
    max_attempts: int = 5
    #: first retry delay; doubles with each attempt
    backoff: float = 0.5
    #: how often idle worker threads look for work queued by other processes (jobs queued in
    #: this process wake them at once, and requests run their own jobs)
    poll: float = 1.0
    #: seconds between passes comparing every entity with the platform (0: never)
    reconcile: float = 10.0


class JobRunner:
    def __init__(
        self,
        store: Store,
        execute: Callable[[Job, JobRunner], None],
        settings: JobSettings | None = None,
        reconcile: Callable[[list[str] | None], int] | None = None,
        events: Callable[[Callable[[str], None]], bool] | None = None,
    ):
        self.store = store
        self.execute = metrics.timed_jobs(execute)
        self.reconcile = reconcile
        self.events = events
        self._observed: set[str] = set()
        self._observe_wake = threading.Event()
        self.settings = settings or JobSettings()
        self.host = socket.gethostname()
        self.server_id = ""
        self.fenced = True
        self._stop = threading.Event()
        # Wake-ups are counted, never cleared: an idle worker sleeps only while the count is
        # what it was when its last claim began, so a notify() that lands between an empty
        # claim and the sleep is never lost (one shared Event, cleared by whichever thread
        # woke first, lost it for the others and left a job waiting for the poll interval).
        self._wake = threading.Condition()
        self._wakeups = 0
        # Jobs carried out here that ended, counted the same way: a request waiting for its
        # job, queued behind another of the same entity, wakes when a job of this process
        # ends (often that one) instead of sleeping out its poll delay.
        self._ended = threading.Condition()
        self._endings = 0
        self._threads: list[threading.Thread] = []
        self._last_ok = 0.0
        self._lock = threading.Lock()
        self._chores: list[tuple[str, float, Callable[[], object]]] = []
        #: the store's write transactions exclude each other (learned at the first claim)
        self._exclusive = False
        #: jobs this process is carrying out right now (worker threads and requests)
        self._busy = 0
        self._busy_lock = threading.Lock()

    def add_chore(self, name: str, interval: float, chore: Callable[[], object]) -> None:
        """Run `chore` every `interval` seconds (first after one interval) on a thread of its
        own while the server is not fenced, e.g. deleting old audit events. A chore shared by
        every server takes a store lease itself (take_lease) so one of them does it. Add
        chores before start()."""
        self._chores.append((name, interval, chore))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._register()
        self._threads = [
            threading.Thread(target=self._heartbeat_loop, name="occi-heartbeat", daemon=True)
        ]
        for i in range(self.settings.threads):
            self._threads.append(
                threading.Thread(target=self._work_loop, name=f"occi-job-{i}", daemon=True)
            )
        if self.reconcile is not None:
            self._threads.append(
                threading.Thread(target=self._reconcile_loop, name="occi-reconcile", daemon=True)
            )
        if self._chores:
            self._threads.append(
                threading.Thread(target=self._chore_loop, name="occi-chores", daemon=True)
            )
        for t in self._threads:
            t.start()
        if self.events is not None and self.reconcile is not None:
            try:
                if self.events(self._on_event):
                    log.info("platform events feed the reconciler")
            except Exception as exc:
                log.warning("platform events unavailable (%s): periodic reconcile only", exc)
        log.info("server %s runs jobs with %d threads", self.server_id, self.settings.threads)

    def stop(self) -> None:
        self._stop.set()
        self.notify()
        self._observe_wake.set()
        for t in self._threads:
            t.join(timeout=5)
        try:
            with self.store.begin() as tx:
                tx.jobs.stop_server(self.server_id)
        except Exception as exc:  # the database may be gone already; the lease covers it
            log.warning("could not unregister %s: %s", self.server_id, exc)

    def _register(self) -> None:
        with self._lock:
            self.server_id = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            with self.store.begin() as tx:
                tx.jobs.register_server(self.server_id, self.host, os.getpid())
            self._last_ok = time.monotonic()
            self.fenced = False

    # ------------------------------------------------------------------ heartbeat
    def _heartbeat_loop(self) -> None:
        s = self.settings
        while not self._stop.wait(s.heartbeat):
            try:
                if self.fenced:
                    self._register()
                    log.warning("server re-registered as %s after fencing", self.server_id)
                    continue
                with self.store.begin() as tx:
                    alive = tx.jobs.heartbeat(self.server_id, s.lease)
                    dead = tx.jobs.reap(s.dead_after)
                if dead:
                    log.warning("declared dead: %s; their jobs are back in the queue", dead)
                    self.notify()
                if not alive:
                    log.error("server %s was declared dead by the others: fencing", self.server_id)
                    self.fenced = True
                    continue
                self._last_ok = time.monotonic()
            except Exception as exc:
                silent = time.monotonic() - self._last_ok
                _failed(f"heartbeat failed ({silent:.1f} s without the database)", exc)
                if silent > s.dead_after - s.heartbeat and not self.fenced:
                    log.error("server %s lost the database: fencing itself", self.server_id)
                    self.fenced = True

    # ------------------------------------------------------------------ reconcile
    def _on_event(self, entity_id: str) -> None:
        with self._lock:
            self._observed.add(entity_id)
        self._observe_wake.set()

    def _reconcile_loop(self) -> None:
        """Events: observe the named entities at once. Periodically: one server (holding a
        shared lease) walks every entity."""
        reconcile = self.reconcile
        assert reconcile is not None  # the loop is started only with a reconcile function
        interval = self.settings.reconcile
        next_pass = time.monotonic() + (interval if interval > 0 else float("inf"))
        while not self._stop.is_set():
            self._observe_wake.wait(max(0.05, min(1.0, next_pass - time.monotonic())))
            self._observe_wake.clear()
            if self.fenced or self._stop.is_set():
                continue
            with self._lock:
                named, self._observed = list(self._observed), set()
            try:
                if named:
                    reconcile(named)
                if time.monotonic() >= next_pass:
                    next_pass = time.monotonic() + interval
                    with self.store.begin() as tx:
                        mine = tx.take_lease("reconcile", interval * 0.9)
                    if mine:
                        reconcile(None)
            except Exception as exc:
                _failed("reconcile failed", exc)

    # ------------------------------------------------------------------ chores
    def _chore_loop(self) -> None:
        due = {name: time.monotonic() + interval for name, interval, _ in self._chores}
        while True:
            wait = min(due.values()) - time.monotonic()
            if self._stop.wait(max(0.05, min(wait, 60.0))):
                return
            for name, interval, chore in self._chores:
                if time.monotonic() < due[name]:
                    continue
                due[name] = time.monotonic() + interval
                if self.fenced:
                    continue
                try:
                    chore()
                except Exception as exc:
                    _failed(f"{name} failed", exc)

    @property
    def busy(self) -> int:
        """How many jobs this process is carrying out now (a parked job is not among them)."""
        return self._busy

    def _count(self, delta: int) -> None:
        with self._busy_lock:
            self._busy += delta

    def healthy(self) -> bool:
        return not self.fenced and time.monotonic() - self._last_ok < self.settings.dead_after

    # ------------------------------------------------------------------ running
    def _work_loop(self) -> None:
        while not self._stop.is_set():
            seen = self._wakeups
            ran = False
            if not self.fenced:
                try:
                    ran = self.run_next()
                except Exception as exc:
                    _failed("job runner error", exc)
                    time.sleep(self.settings.poll)
            if not ran:
                self._sleep(seen)

    def _sleep(self, seen: int) -> None:
        """Wait for the poll interval, unless notify() was called since the count was `seen`."""
        with self._wake:
            self._wake.wait_for(
                lambda: self._wakeups != seen or self._stop.is_set(), self.settings.poll
            )

    def run_next(self, job_id: str | None = None) -> bool:
        """Claim a job (the next one, or that one) and run it here. False when none was free."""
        return self._run_next(job_id) is not None

    def _run_next(
        self, job_id: str | None = None, given: object = None, event: dict | None = None
    ) -> Job | None:
        """Claim a job and run it here: the job as its execution left it (its status is
        done or failed once that is stored), or None when none was free. `given`: the
        entity as the request that queued that job stored it (see Job.given)."""
        if self.fenced:
            return None
        server_id = self.server_id
        _context.depth = getattr(_context, "depth", 0) + 1
        try:
            if job_id is None and self._exclusive:
                # polling where a write transaction locks out every other writer (SQLite):
                # look with a read first, so idle pollers never hold up requests
                with self.store.begin(readonly=True) as tx:
                    if not tx.jobs.any_runnable():
                        return None
            with self.store.begin(single=True) as tx:  # the claim is one statement
                self._exclusive = tx.jobs.exclusive
                job = tx.jobs.claim(server_id, self.settings.lease, job_id)
            if job is None:
                return None
            if job_id is not None:
                job.given, job.event = given, event
            log.debug(
                "running %s %s on %s (attempt %d)",
                job.operation,
                job.entity_id,
                server_id,
                job.attempts,
            )
            self._carry_out(job)
            return job
        finally:
            _context.depth -= 1

    def run_claimed(self, job: Job) -> bool:
        """Run a job inserted already claimed by this server (JobTx.enqueue's owner), unless
        this server was fenced since: then its lease lapses and another server runs it."""
        if not self.still_mine(job):
            return False
        _context.depth = getattr(_context, "depth", 0) + 1
        try:
            log.debug(
                "running %s %s on %s (attempt %d, claimed at insert)",
                job.operation,
                job.entity_id,
                job.owner,
                job.attempts,
            )
            self._carry_out(job)
            return True
        finally:
            _context.depth -= 1

    def _carry_out(self, job: Job) -> None:
        """Execute a job claimed here, counted as busy meanwhile; its end wakes the waiters."""
        self._count(1)
        try:
            self.execute(job, self)
        finally:
            self._count(-1)
            self._job_ended()

    def _await_ending(self, seen: int, delay: float) -> None:
        """Sleep up to `delay`, unless a job of this process ended since the count was `seen`."""
        with self._ended:
            self._ended.wait_for(lambda: self._endings != seen, delay)

    def _job_ended(self) -> None:
        with self._ended:
            self._endings += 1
            self._ended.notify_all()

    def notify(self) -> None:
        """Wake every idle worker thread, and any about to go idle, to claim again."""
        with self._wake:
            self._wakeups += 1
            self._wake.notify_all()

    def still_mine(self, job: Job) -> bool:
        """Whether this server may still act for `job` (not fenced, lease kept alive)."""
        return not self.fenced and job.owner == self.server_id

    def backoff(self, attempts: int) -> float:
        return self.settings.backoff * (2 ** max(0, attempts - 1))

    # ------------------------------------------------------------------ waiting
    def settle(
        self,
        job_ids: Iterable[str],
        timeout: float | None = None,
        *,
        claimed: dict[str, Job] | None = None,
        given: dict[str, object] | None = None,
        events: dict[str, dict] | None = None,
    ) -> dict[str, Job]:
        """Run these jobs here if they are free (or `claimed` by this server already, see
        run_claimed), then wait (up to `timeout`, default the configured wait) until they
        finish. Returns their last known states. `given`: job id -> its entity as the
        request stored it, for a job claimed here at once (see Job.given); `events`: job id ->
        the audit event stored with its record when it runs here (Job.event)."""
        claimed = claimed or {}
        given = given or {}
        events = events or {}
        ids = list(job_ids)
        if not ids:
            return {}
        wait = self.settings.wait if timeout is None else timeout
        if wait <= 0:  # answer at once: the worker threads take it from here
            self.notify()
            with self.store.begin(readonly=True) as tx:
                return tx.jobs.statuses(ids)
        deadline = time.monotonic() + wait
        ran: dict[str, Job] = {}  # run here, as their execution left them
        for job_id in ids:
            try:
                if job_id in claimed:
                    claimed[job_id].event = events.get(job_id)
                    if self.run_claimed(claimed[job_id]):
                        ran[job_id] = claimed[job_id]
                else:
                    job = self._run_next(job_id, given.get(job_id), events.get(job_id))
                    if job is not None:
                        ran[job_id] = job
            except Exception as exc:
                _failed(f"inline job {job_id} failed", exc)
        if all(i in ran and ran[i].status in FINISHED for i in ids):
            return ran  # all done here and stored: nothing to read, nobody to wake
        self.notify()
        delay = 0.005
        while True:
            ended = self._endings
            with self.store.begin(readonly=True) as tx:
                jobs = tx.jobs.statuses(ids)
            pending = [i for i in ids if i in jobs and jobs[i].status not in FINISHED]
            if not pending or time.monotonic() >= deadline:
                return jobs
            # a job queued behind another one of the same entity becomes free when that ends
            for job_id in pending:
                try:
                    self.run_next(job_id)
                except Exception as exc:
                    _failed(f"inline job {job_id} failed", exc)
            self._await_ending(ended, delay)
            delay = min(delay * 2, 0.1)

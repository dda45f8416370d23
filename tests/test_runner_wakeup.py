"""The job runner's worker threads never lose a wake-up: a notify() that arrives while a thread
is between an empty claim and its sleep makes that thread claim again at once, whatever the
other threads do with their own wake-ups. The poll interval is set to an hour, so a job that
waits for the poll never runs within the test's bounds."""

from __future__ import annotations

import threading
import time

import pytest

from occi.jobs.runner import JobRunner, JobSettings
from occi.store import make_store

BOUND = 30.0  # seconds; generous: the jobs need milliseconds


@pytest.fixture
def store(sqlite_url):
    s = make_store(sqlite_url)
    s.upgrade()
    yield s
    s.close()


class HookedRunner(JobRunner):
    """A runner whose first empty claim, in whichever worker thread makes it, is followed by
    `after_empty_claim()` before that thread goes to sleep: the window in which a wake-up can
    be lost."""

    def __init__(self, *args, after_empty_claim, **kw):
        super().__init__(*args, **kw)
        self.after_empty_claim = after_empty_claim
        self.hooked: threading.Thread | None = None
        self.other_idle = threading.Event()  # the other worker thread has claimed nothing too
        self._hook_lock = threading.Lock()

    def run_next(self, job_id: str | None = None) -> bool:
        ran = super().run_next(job_id)
        if not ran and job_id is None and threading.current_thread().name.startswith("occi-job"):
            with self._hook_lock:
                first = self.hooked is None
                if first:
                    self.hooked = threading.current_thread()
                elif self.hooked is not threading.current_thread():
                    self.other_idle.set()
            if first:
                self.after_empty_claim()
        return ran


def test_a_wakeup_taken_by_another_thread_is_not_lost(store):
    """Thread A claims nothing; two jobs are queued and notify() is called; thread B wakes and
    takes the first job. A must still see that wake-up and take the second. Each job waits
    for the other to start, so they finish only if both threads run them at once."""
    both_running = threading.Barrier(2, timeout=BOUND)
    started: list[str] = []
    first_started = threading.Event()
    results: dict[str, bool] = {}
    both_finished = threading.Event()

    def execute(job, runner):
        started.append(threading.current_thread().name)
        first_started.set()
        try:
            both_running.wait()
            results[job.id] = True
        except threading.BrokenBarrierError:
            results[job.id] = False
        with store.begin() as tx:
            tx.jobs.finish(job.id, job.owner)
        if len(results) == 2:
            both_finished.set()

    def queue_two_jobs_and_notify():
        # let the other thread go to sleep first (with the fix, the order does not matter)
        assert runner.other_idle.wait(BOUND)
        time.sleep(0.2)
        with store.begin() as tx:
            tx.jobs.enqueue("e1", "action", {})
            tx.jobs.enqueue("e2", "action", {})
        runner.notify()
        # the other thread wakes up and takes a job before this one goes to sleep
        assert first_started.wait(BOUND)

    runner = HookedRunner(
        store,
        execute,
        JobSettings(threads=2, poll=3600.0, heartbeat=3600.0, reconcile=0),
        after_empty_claim=queue_two_jobs_and_notify,
    )
    runner.start()
    try:
        assert both_finished.wait(BOUND + 5), results
        # both jobs ran at the same time, each in its own thread; the hooked thread took one
        assert sorted(results.values()) == [True, True], results
        assert len(set(started)) == 2, started
        assert runner.hooked is not None and runner.hooked.name in started
    finally:
        both_running.abort()
        runner.stop()


def test_idle_pollers_on_sqlite_look_before_taking_the_write_lock(store):
    """On SQLite a write transaction (BEGIN IMMEDIATE) locks out every writer, requests
    included: a poller that finds no work must find it with a read, and take the write lock
    only to claim a job that is there."""
    import sqlalchemy as sa

    ran: list[str] = []

    def execute(job, runner):
        ran.append(job.id)
        with store.begin() as tx:
            tx.jobs.finish(job.id, job.owner)

    runner = JobRunner(store, execute, JobSettings(reconcile=0))
    runner._register()
    runner.run_next()  # the first claim learns how the store locks
    statements: list[str] = []

    def on_execute(conn, cursor, statement, *args):
        statements.append(statement.split()[0] + " " + (statement.split() + [""])[1])

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", on_execute)
    try:
        for _ in range(3):
            assert not runner.run_next()
        assert "BEGIN IMMEDIATE" not in statements, statements
        with store.begin() as tx:
            job_id = tx.jobs.enqueue("e1", "action", {})
        statements.clear()
        assert runner.run_next()
        # a look (a read), then the claim: one UPDATE (autocommitted, the write lock held for it
        # alone); the job's record is the one write transaction
        assert ran == [job_id] and statements.count("BEGIN IMMEDIATE") == 1, statements
        assert statements[:3] == ["BEGIN ", "SELECT jobs.seq", "UPDATE jobs"], statements
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", on_execute)

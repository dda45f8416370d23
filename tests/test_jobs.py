"""The job queue and server registry on SQLite and PostgreSQL: claiming, ordering per entity,
leases, reaping dead servers, fencing, and owner checks on results."""

from __future__ import annotations

import threading
import time

import pytest

from occi.jobs.runner import JobRunner, JobSettings
from occi.store import make_store


@pytest.fixture
def store(db_url):
    s = make_store(db_url)
    s.upgrade()
    yield s
    s.close()


def enqueue(store, entity, op="action", **params):
    with store.begin() as tx:
        return tx.jobs.enqueue(entity, op, params)


def claim(store, server, lease=10.0, job_id=None):
    with store.begin() as tx:
        return tx.jobs.claim(server, lease, job_id)


def register(store, *names):
    with store.begin() as tx:
        for n in names:
            tx.jobs.register_server(n, "host", 1)


def test_jobs_of_one_entity_run_in_order_and_one_at_a_time(store):
    register(store, "a", "b")
    first = enqueue(store, "e1", action="start")
    second = enqueue(store, "e1", action="stop")
    other = enqueue(store, "e2", action="start")
    j1 = claim(store, "a")
    assert j1.id == first and j1.attempts == 1 and j1.status == "running"
    # e1's second job waits for the first; e2's job is free: different entities in parallel
    j2 = claim(store, "b")
    assert j2.id == other
    assert claim(store, "b") is None
    assert claim(store, "b", job_id=second) is None
    with store.begin() as tx:
        assert tx.jobs.finish(first, "a", {"ok": 1})
    j3 = claim(store, "b")
    assert j3.id == second and j3.params == {"action": "stop"}
    with store.begin() as tx:
        assert tx.jobs.get(first).result == {"ok": 1}
        assert tx.jobs.counts() == {"done": 1, "running": 2}


def test_only_the_owner_records_a_result(store):
    register(store, "a", "b")
    job_id = enqueue(store, "e1")
    claim(store, "a", lease=0.0)  # lease already over: "a" looks dead to others
    time.sleep(0.01)
    taken = claim(store, "b")
    assert taken.id == job_id and taken.attempts == 2 and taken.owner == "b"
    with store.begin() as tx:
        assert not tx.jobs.finish(job_id, "a")  # the zombie's result is refused
        assert tx.jobs.finish(job_id, "b")


def test_retry_waits_for_its_backoff(store):
    register(store, "a")
    job_id = enqueue(store, "e1")
    claim(store, "a")
    with store.begin() as tx:
        assert tx.jobs.retry(job_id, "a", "platform busy", delay=0.3)
    assert claim(store, "a") is None
    time.sleep(0.35)
    again = claim(store, "a")
    assert again.id == job_id and again.attempts == 2 and again.error == "platform busy"


def test_dead_servers_are_reaped_and_their_jobs_requeued(store):
    register(store, "alive", "silent")
    job_id = enqueue(store, "e1")
    claim(store, "silent", lease=60.0)
    time.sleep(0.2)
    with store.begin() as tx:
        assert tx.jobs.heartbeat("alive", 60.0)
        dead = tx.jobs.reap(dead_after=0.1)
    assert dead == ["silent"]
    with store.begin() as tx:
        assert not tx.jobs.heartbeat("silent", 60.0)  # it must fence itself
        states = {s.id: s.status for s in tx.jobs.servers()}
    assert states == {"alive": "alive", "silent": "dead"}
    job = claim(store, "alive")
    assert job.id == job_id and job.attempts == 2


def test_concurrent_claims_never_hand_out_a_job_twice(store):
    register(store, *[f"s{i}" for i in range(4)])
    ids = {enqueue(store, f"e{i}") for i in range(40)}
    taken: list[str] = []
    lock = threading.Lock()

    def worker(name):
        while True:
            job = claim(store, name)
            if job is None:
                return
            with lock:
                taken.append(job.id)
            with store.begin() as tx:
                tx.jobs.finish(job.id, name)

    threads = [threading.Thread(target=worker, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)


def test_runner_runs_jobs_in_the_background_and_fences_when_declared_dead(store):
    done: list[str] = []

    def execute(job, runner):
        done.append(job.params["n"])
        with store.begin() as tx:
            tx.jobs.finish(job.id, job.owner)

    settings = JobSettings(wait=5, heartbeat=0.05, dead_after=0.5, threads=2, poll=0.02)
    runner = JobRunner(store, execute, settings)
    runner.start()
    try:
        for n in range(5):
            enqueue(store, "e1", n=n)
        deadline = time.monotonic() + 10
        while len(done) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert done == [0, 1, 2, 3, 4]  # one entity: strictly in order
        first_id = runner.server_id
        with store.begin() as tx:  # the others declare it dead
            from occi.store.sql import servers

            tx.conn.execute(servers.update().values(status="dead"))
        deadline = time.monotonic() + 5
        while runner.server_id == first_id and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runner.server_id != first_id  # fenced, then registered anew
        with store.begin() as tx:
            assert {s.status for s in tx.jobs.servers() if s.id == first_id} == {"dead"}
    finally:
        runner.stop()
    with store.begin() as tx:
        assert {s.id: s.status for s in tx.jobs.servers()}[runner.server_id] == "stopped"


def test_settle_runs_a_free_job_in_the_calling_thread(store):
    seen: list[str] = []

    def execute(job, runner):
        seen.append(threading.current_thread().name)
        with store.begin() as tx:
            tx.jobs.finish(job.id, job.owner)

    runner = JobRunner(store, execute, JobSettings(wait=5))
    runner._register()  # no background threads
    job_id = enqueue(store, "e1")
    jobs = runner.settle([job_id])
    assert jobs[job_id].status == "done"
    assert seen == [threading.current_thread().name]


def test_a_job_inserted_claimed_runs_only_on_its_server_and_is_recovered_if_it_dies(store):
    """The request's fast path: its job is inserted already claimed (running, first attempt,
    under a lease) by the server that will run it. No other server claims it while that server
    lives; when it dies, the reaper puts it back in the queue and another server runs it, still
    after every earlier job of the entity and before every later one."""
    register(store, "a", "b")
    with store.begin() as tx:
        mine = tx.jobs.enqueue("e1", "create", {}, owner="a", lease=10.0)
    later = enqueue(store, "e1", action="start")
    with store.begin() as tx:
        job = tx.jobs.get(mine)
    assert (job.status, job.owner, job.attempts) == ("running", "a", 1)
    assert claim(store, "b") is None  # neither the claimed job nor the one queued behind it
    with store.begin() as tx:
        tx.conn.execute(tx.jobs.s.update().where(tx.jobs.s.c.id == "a").values(heartbeat_at=0))
        assert tx.jobs.reap(5.0) == ["a"]
    taken = claim(store, "b")
    assert taken.id == mine and taken.attempts == 2
    with store.begin() as tx:
        assert not tx.jobs.finish(mine, "a")  # the dead server's result is refused
        assert tx.jobs.finish(mine, "b")
    assert claim(store, "b").id == later


def test_an_action_queued_behind_nothing_is_inserted_claimed_and_behind_something_pending(store):
    """enqueue_behind with an owner: the job is claimed at insert exactly when the list of
    jobs it queues behind, read by the same statement, is empty; behind a job it is pending,
    unowned, and runs after that job, claimed as any other."""
    register(store, "a", "b")
    with store.begin() as tx:
        first, ahead = tx.jobs.enqueue_behind("e1", "action", {}, owner="a", lease=10.0)
    assert ahead == []
    with store.begin() as tx:
        job = tx.jobs.get(first)
    assert (job.status, job.owner, job.attempts) == ("running", "a", 1)
    assert claim(store, "b") is None  # claimed, and its server lives
    with store.begin() as tx:
        second, ahead = tx.jobs.enqueue_behind("e1", "action", {}, owner="a", lease=10.0)
    assert [j.id for j in ahead] == [first]
    with store.begin() as tx:
        job = tx.jobs.get(second)
    assert (job.status, job.owner, job.attempts) == ("pending", None, 0)
    assert claim(store, "b") is None  # behind the running one
    with store.begin() as tx:
        assert tx.jobs.finish(first, "a")
    assert claim(store, "b").id == second
    with store.begin() as tx:  # no owner: pending even with nothing ahead
        third, ahead = tx.jobs.enqueue_behind("e2", "action", {})
        assert ahead == [] and tx.jobs.get(third).status == "pending"


@pytest.mark.postgres
def test_on_postgresql_a_job_is_queued_only_under_its_entitys_row_lock(pg_url):
    """Every way of queueing a pending job (one, many, behind others) takes a lock on its key
    entity's row first. While another transaction holds the row FOR UPDATE (here: one that
    queued an action claimed at insert, behind nothing), a job cannot be queued (a short lock
    timeout says so instead of a timed wait); once it commits, the job queues after that one
    and sees it."""
    from occi.errors import ServiceUnavailable
    from tests.test_store import compute

    store = make_store(pg_url)
    try:
        store.upgrade()
        register(store, "a", "b")
        with store.begin() as tx:
            tx.insert(compute("e1"))
        ways = {
            "enqueue": lambda tx: tx.jobs.enqueue("e1", "action", {}),
            "enqueue_many": lambda tx: tx.jobs.enqueue_many([("e1", "action", {})])[0],
            "enqueue_behind": lambda tx: tx.jobs.enqueue_behind("e1", "action", {}, owner="b")[0],
        }
        for way, queue in ways.items():
            with store.begin() as holder:
                assert holder.get("e1", for_update=True) is not None
                first, ahead = holder.jobs.enqueue_behind("e1", "action", {}, owner="a")
                assert ahead == []
                with pytest.raises(ServiceUnavailable):
                    with store.begin() as other:
                        other.conn.exec_driver_sql("SET LOCAL lock_timeout = '100ms'")
                        if way == "enqueue_behind":  # its caller locks the entity first
                            other.get("e1", for_update=True)
                        queue(other)
            with store.begin() as tx:
                if way == "enqueue_behind":
                    tx.get("e1", for_update=True)
                later = queue(tx)
            with store.begin() as tx:
                queued = tx.jobs.unfinished(["e1"])
                assert [j.id for j in queued] == [first, later], way
                assert queued[1].status == "pending"  # behind the running one
                assert tx.jobs.finish(first, "a")
                tx.jobs.statuses([later])
            assert claim(store, "b").id == later
            with store.begin() as tx:
                assert tx.jobs.finish(later, "b")
        # a job record's plain UPDATE of the row does not hold a job up (FOR KEY SHARE): a
        # request holding a link's row that queues a job of its source never waits for it
        with store.begin() as holder:
            holder.conn.exec_driver_sql("UPDATE entities SET title = 'recorded' WHERE id = 'e1'")
            with store.begin() as other:
                other.conn.exec_driver_sql("SET LOCAL lock_timeout = '100ms'")
                other.jobs.enqueue("e1", "action", {})
                other.jobs.enqueue_many([("e1", "action", {})])
    finally:
        store.close()


def test_a_job_behind_nothing_waits_while_a_later_job_of_its_entity_runs(store):
    """One job of an entity at a time, whatever the order they were committed in: a job that
    runs under a live lease holds up every other job of its entity, even one queued before it
    (two transactions that did not see each other's jobs). When its lease lapses, the
    earlier one goes first."""
    register(store, "a", "b")
    earlier = enqueue(store, "e1", action="stop")
    with store.begin() as tx:
        running = tx.jobs.enqueue("e1", "action", {"action": "start"}, owner="a", lease=10.0)
    assert claim(store, "b") is None
    with store.begin() as tx:
        assert tx.jobs.finish(running, "a")
    assert claim(store, "b").id == earlier
    with store.begin() as tx:  # a lapsed lease holds nothing up
        assert tx.jobs.finish(earlier, "b")
        first = tx.jobs.enqueue("e2", "action", {}, owner="a", lease=-1.0)
        second = tx.jobs.enqueue("e2", "action", {})
    assert claim(store, "b").id == first
    with store.begin() as tx:
        assert tx.jobs.finish(first, "b")
    assert claim(store, "b").id == second


def test_a_fenced_runner_runs_nothing_inline_and_leaves_its_claimed_jobs_to_others(store):
    """A server fenced between a request's insert and its run does not run the job it
    claimed at insert (its lease will lapse), nor claim a free one; the request waits for
    them like for any job (here: not at all) and gets their states."""
    ran: list[str] = []
    runner = JobRunner(store, lambda job, r: ran.append(job.id), JobSettings(wait=0.05))
    runner._register()
    with store.begin() as tx:
        mine = tx.jobs.enqueue("e1", "create", {}, owner=runner.server_id, lease=10.0)
    free = enqueue(store, "e2")
    with store.begin() as tx:
        claimed = tx.jobs.get(mine)
    runner.fenced = True
    assert not runner.run_next(free)
    jobs = runner.settle([mine, free], claimed={mine: claimed})
    assert ran == []
    assert (jobs[mine].status, jobs[free].status) == ("running", "pending")


# ------------------------------------------------------------------ an action behind others
@pytest.fixture
def app_on_both(db_url):
    """The real app on SQLite and PostgreSQL; a request waits 0.3 s for its jobs."""
    from falcon import testing

    from occi.api.wsgi import build
    from occi.settings import Settings
    from tests.api.conftest import Api

    settings = Settings.from_mapping({"database_url": db_url, "auth": "none", "job_wait": 0.3})
    app, service = build(settings, upgrade=True, run_jobs=False)
    yield Api(testing.TestClient(app), service)
    service.store.close()
    service.backend.close()


def _active_compute(api) -> tuple[str, str]:
    from tests.api.conftest import INFRA

    r = api.post("/compute/", {"kind": INFRA + "compute"})
    path = api.path_of(r)
    r = api.post(path, {"action": ACTION + "start"}, params={"action": "start"})
    assert r.status_code == 200, r.text
    return path, path.rsplit("/", 1)[-1]


def _held_by_another_server(api, entity_id: str, term: str) -> None:
    """A job of the entity another (live) server runs: whatever comes next queues behind."""
    with api.service.store.begin() as tx:
        params = {"target": entity_id, "action": term, "params": {}}
        tx.jobs.enqueue(entity_id, "action", params, owner="elsewhere", lease=300.0)


def _jobs_of(api, entity_id: str) -> list[tuple[str, str]]:
    with api.service.store.begin(readonly=True) as tx:
        return [
            (j.params["action"].rsplit("#", 1)[-1], j.status)
            for j in tx.jobs.unfinished([entity_id])
        ]


ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"


def test_an_action_is_checked_behind_the_actions_queued_before_it(app_on_both):
    """Allowed now but not after what is queued (restart behind a stop): 409, nothing
    queued. Refused now but allowed after it (start behind a stop): queued behind it, the
    entity noted "requested"."""
    api = app_on_both
    path, entity_id = _active_compute(api)
    _held_by_another_server(api, entity_id, "stop")
    r = api.post(path, {"action": ACTION + "restart"}, params={"action": "restart"})
    assert r.status_code == 409, r.text
    assert "restart" in r.text
    assert _jobs_of(api, entity_id) == [("stop", "running")]
    r = api.post(path, {"action": ACTION + "start"}, params={"action": "start"})
    assert r.status_code in (200, 202), r.text
    assert _jobs_of(api, entity_id) == [("stop", "running"), ("start", "pending")]
    assert api.get(path).json["attributes"]["occi.compute.state.message"] == "start requested"
    # allowed now and behind them too (stop after stop, start): queued, noted "requested"
    r = api.post(path, {"action": ACTION + "stop"}, params={"action": "stop"})
    assert r.status_code in (200, 202), r.text
    assert _jobs_of(api, entity_id)[-1] == ("stop", "pending")
    assert api.get(path).json["attributes"]["occi.compute.state.message"] == "stop requested"

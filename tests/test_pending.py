"""Long platform tasks (issue 12 item 10): a backend answers Pending with a handle, the job is
parked in the queue without holding a thread, and whichever server claims it when it is due
polls the task and records its end as the operation's own. Exercised through the real app on
the simulator in pending mode (`simulator_pending`): a create answering before its task ends,
one job thread with two tasks outstanding, a task failing when it is carried out, a second
server finishing what a first one started, and the backend's platform reference kept in the
store, handed to later operations and never rendered. No timing assertions: polls with a
deadline."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from falcon import testing

from backends.simulator.schema import machines, tasks
from occi.api.wsgi import build
from occi.jobs.execution import PENDING_KEY
from occi.settings import Settings
from occi.store.base import Job
from occi.store.sql import entities, jobs
from tests.api.conftest import Api

ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
INFRA_COMPUTE = "http://schemas.ogf.org/occi/infrastructure#compute"
BOUND = 30.0  # seconds; generous: the tasks take a fraction of a second


def until(what: str, check: Callable[[], object], bound: float = BOUND) -> object:
    """Poll `check` until it answers something true; fail naming `what` after `bound`."""
    deadline = time.monotonic() + bound
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"not within {bound} s: {what}")
        time.sleep(0.02)


class Cloud:
    """One server: the real app and its service (with its job runner's threads or without)."""

    def __init__(self, settings: Settings, *, run_jobs: bool = True):
        app, service = build(settings, upgrade=True, run_jobs=run_jobs)
        self.service = service
        self.api = Api(testing.TestClient(app), service)

    def close(self) -> None:
        if self.service.runner is not None:
            self.service.runner.stop()
        self.service.pool.close()
        self.service.store.close()
        self.service.backend.close()

    def create(self) -> tuple[str, str]:
        """A new compute: its location and id."""
        r = self.api.create("compute", {"occi.compute.cores": 1, "occi.compute.memory": 1.0})
        path = self.api.path_of(r)
        return path, path.rsplit("/", 1)[-1]

    def jobs(self, entity_id: str) -> list[Job]:
        with self.service.store.begin(readonly=True) as tx:
            return tx.jobs.unfinished([entity_id])

    def parked_at(self, entity_id: str) -> float:
        """When the entity's unfinished job last changed (parked again after a poll)."""
        with self.service.store.begin(readonly=True) as tx:
            return float(
                tx.conn.execute(  # type: ignore[attr-defined]
                    sa.select(sa.func.max(jobs.c.updated_at)).where(jobs.c.entity_id == entity_id)
                ).scalar_one()
            )

    def attributes(self, entity_id: str) -> dict:
        found = self.service.store.get_one(entity_id, fresh=True)
        assert found is not None
        return dict(found.attributes)

    def platform(self) -> sa.Engine:
        """The simulated platform's database (its sim_ tables)."""
        return self.service.backend.engine  # type: ignore[attr-defined,no-any-return]


def _settings(url: str, **extra) -> Settings:
    return Settings.from_mapping(
        {
            "database_url": url,
            "auth": "none",
            "secret_key": "a key for the pending task tests",
            "reconcile_interval": 0,
            **extra,
        }
    )


@pytest.fixture
def clouds() -> Iterator[list[Cloud]]:
    made: list[Cloud] = []
    yield made
    for cloud in reversed(made):
        cloud.close()


def _parked(job: Job) -> bool:
    pending = job.params.get(PENDING_KEY)
    return job.status == "pending" and isinstance(pending, dict) and "handle" in pending


def test_a_create_answers_before_its_task_ends_and_no_thread_waits_for_it(tmp_path, clouds):
    """One job thread, two creates whose tasks take long: both tasks are under way at once
    while the runner carries out nothing; once the platform ends them, both computes are
    created."""
    cloud = Cloud(
        _settings(f"sqlite:///{tmp_path}/p.db", simulator_pending=600, job_threads=1, job_wait=0.2)
    )
    clouds.append(cloud)
    (_, a_id), (_, b_id) = cloud.create(), cloud.create()
    runner = cloud.service.runner
    assert runner is not None

    def both_parked_and_runner_idle() -> list[Job]:
        jobs = cloud.jobs(a_id) + cloud.jobs(b_id)
        parked = len(jobs) == 2 and all(_parked(j) for j in jobs) and runner.busy == 0
        return jobs if parked else []

    until("both creates parked, no job carried out", both_parked_and_runner_idle)
    parked_at = cloud.parked_at(a_id)
    until("the job thread polled the task again", lambda: cloud.parked_at(a_id) > parked_at)
    jobs = until("and parked it again", both_parked_and_runner_idle)
    assert [j.attempts for j in jobs] == [0, 0]  # type: ignore[attr-defined]  # polls: no failure

    until("both creates parked, no job carried out", both_parked_and_runner_idle)
    with cloud.platform().begin() as conn:
        outstanding = conn.execute(
            sa.select(sa.func.count()).select_from(tasks).where(tasks.c.outcome.is_(None))
        ).scalar_one()
    assert outstanding == 2
    shown = cloud.attributes(a_id)
    assert shown["occi.compute.state"] == "inactive"
    assert "under way" in shown["occi.compute.state.message"]

    with cloud.platform().begin() as conn:  # the platform ends its tasks
        conn.execute(sa.update(tasks).values(due_at=0.0))
    for entity_id in (a_id, b_id):
        until(f"{entity_id} created", lambda i=entity_id: not cloud.jobs(i))
        assert cloud.attributes(entity_id)["occi.compute.state.message"] == (
            "created, inactive until started"
        )


def test_a_request_waits_for_short_tasks_and_the_platform_ref_is_kept_not_rendered(
    tmp_path, clouds
):
    """A request waiting long enough answers with the task's end; the machine's name comes
    back as the platform reference, is stored with the placement, is what later operations
    use (after the platform renamed the machine, start still finds it), and is never shown."""
    cloud = Cloud(_settings(f"sqlite:///{tmp_path}/p.db", simulator_pending=0.3, job_wait=20))
    clouds.append(cloud)
    path, entity_id = cloud.create()
    assert not cloud.jobs(entity_id)
    stored = cloud.service.store.get_one(entity_id, fresh=True)
    assert stored is not None and stored.placement is not None
    assert stored.placement.platform_ref == f"occi-{entity_id}"

    renamed = f"vm-{uuid.uuid4().hex}"
    with cloud.platform().begin() as conn:
        conn.execute(
            sa.update(machines).where(machines.c.name == f"occi-{entity_id}").values(name=renamed)
        )
    with cloud.service.store.begin() as tx:
        tx.record_platform_ref(entity_id, renamed)

    r = cloud.api.post(f"{path}?action=start", {"action": ACTION + "start"})
    assert r.status_code == 200, r.text
    assert cloud.attributes(entity_id)["occi.compute.state"] == "active"
    with cloud.platform().begin() as conn:
        state = conn.execute(sa.select(machines.c.state).where(machines.c.name == renamed))
        assert state.scalar_one() == "active"

    for accept in ("application/occi+json", "text/plain", "application/json"):
        r = cloud.api.get(path, accept=accept)
        assert r.status_code == 200, r.text
        assert renamed not in r.text and "platform_ref" not in r.text
    listing = cloud.api.get("/compute/", accept="text/plain")
    assert renamed not in listing.text


def test_a_task_failing_puts_the_compute_in_error_with_why(tmp_path, clouds):
    """`simulator_fail=start`: the start task is accepted, then fails when it is carried out;
    the request answers 502 and the compute says why."""
    cloud = Cloud(
        _settings(
            f"sqlite:///{tmp_path}/p.db",
            simulator_pending=0.3,
            simulator_fail="start",
            job_wait=20,
            job_max_attempts=1,
        )
    )
    clouds.append(cloud)
    path, entity_id = cloud.create()
    r = cloud.api.post(f"{path}?action=start", {"action": ACTION + "start"})
    assert r.status_code == 502, r.text
    attributes = cloud.attributes(entity_id)
    assert attributes["occi.compute.state"] == "error"
    assert "simulated failure of start" in attributes["occi.compute.state.message"]
    with cloud.platform().begin() as conn:
        ended = conn.execute(sa.select(tasks.c.operation, tasks.c.error)).all()
    assert [(op, "simulated failure of start" in (err or "")) for op, err in ended] == [
        ("create", False),
        ("start", True),
    ]


def test_another_server_finishes_a_task_the_first_one_started(db_url, clouds):
    """Server A starts a create's task and goes away without a word (no job threads, never
    stopped); server B, on the same database, polls the task and records the compute."""
    settings = _settings(db_url, simulator_pending=0.5, job_wait=0.05)
    first = Cloud(settings, run_jobs=False)
    clouds.append(first)
    path, entity_id = first.create()
    jobs = first.jobs(entity_id)
    assert len(jobs) == 1 and _parked(jobs[0]), jobs

    second = Cloud(settings)
    clouds.append(second)
    until("the second server finished the create", lambda: not second.jobs(entity_id))
    assert second.attributes(entity_id)["occi.compute.state.message"] == (
        "created, inactive until started"
    )
    with second.service.store.begin(readonly=True) as tx:
        ref = tx.conn.execute(  # type: ignore[attr-defined]
            sa.select(entities.c.platform_ref).where(entities.c.id == entity_id)
        ).scalar_one()
    assert ref == f"occi-{entity_id}"
    assert second.api.get(path).status_code == 200


def test_a_move_for_maintenance_runs_as_a_task_keeping_its_reservation(tmp_path):
    """Maintenance on a platform whose moves are tasks: the move is parked with the target it
    reserved, and once the task ends the compute is on the other host."""
    from occi.context import RequestContext
    from tests.test_maintenance import Cloud as AdminCloud
    from tests.test_maintenance import _settings as admin_settings

    system = RequestContext.system()
    cloud = AdminCloud(admin_settings(tmp_path, job_wait=20))
    try:
        cloud.admin.create_zone(system, {"name": "z1"})
        cluster = {"name": "c1", "zone": "z1", "backend": "simulator"}
        cloud.admin.create_cluster(system, {**cluster, "settings": {"simulator_pending": "0.3"}})
        for name in ("h1", "h2"):
            cloud.admin.create_host(
                system, {"name": name, "cluster": "c1", "cores": 4, "memory_gb": 8}
            )
        placed = cloud.compute(cores=2)
        assert cloud.host_of(placed) == "h1"
        doc = cloud.admin.host_action(system, "h1", "maintenance")
        until(
            "h1 in maintenance",
            lambda: cloud.hosts()["h1"]["admin_state"] == "maintenance",
        )
        assert cloud.host_of(placed) == "h2"
        hosts = cloud.hosts()
        assert (hosts["h1"]["used_cores"], hosts["h2"]["used_cores"]) == (0, 2), doc
        engine = cloud.service.pool.backend_for(cloud.entity(placed)).engine
        with engine.begin() as conn:
            done = conn.execute(sa.select(tasks.c.operation, tasks.c.outcome)).all()
        assert [(op, outcome is not None) for op, outcome in done] == [
            ("create", True),
            ("migrate", True),
        ]
    finally:
        cloud.close()


def test_pending_is_bounded_and_a_backend_without_tasks_has_nothing_to_poll():
    """A handle fits a job's row; a poll is never sooner than 50 ms nor later than a minute;
    a backend that never answers Pending (libvirt) refuses a poll as Unsupported."""
    from backends.base import MAX_HANDLE, Pending, Unsupported
    from occi.model import Resource
    from occi.plugins import load_backend

    with pytest.raises(ValueError):
        Pending("x" * (MAX_HANDLE + 1))
    with pytest.raises(ValueError):
        Pending("")
    assert Pending("task-1", 0).delay == 0.05
    assert Pending("task-1", 3600).delay == 60.0
    assert Pending("task-1", float("nan")).delay == 1.0
    assert Pending("task-1", 2.5).delay == 2.5

    libvirt = load_backend("libvirt", {"libvirt_uri": "test:///default"})
    try:
        with pytest.raises(Unsupported):
            libvirt.poll(Resource(INFRA_COMPUTE, id="c1"), "task-1")
    finally:
        libvirt.close()

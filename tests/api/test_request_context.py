"""The request context reaches the service: the jobs a request queues carry its request id, so
any server process that runs them logs under it; and the service called directly (jobs, the
command line) takes a context of its own."""

from __future__ import annotations

from occi import infrastructure as infra
from occi.context import DEFAULT_PROJECT, RequestContext
from occi.model import Resource
from tests.api.conftest import INFRA


def _jobs(service) -> list:
    with service.store.begin(readonly=True) as tx:
        return tx.jobs.recent(200)


def test_jobs_of_a_request_carry_its_request_id(api):
    r = api.post("/compute/", {"kind": INFRA + "compute"}, headers={"X-Request-Id": "ctx-create"})
    assert r.status_code == 201, r.text
    path = api.path_of(r)
    r = api.post(path + "?action=start", None, headers={"X-Request-Id": "ctx-start"})
    assert r.status_code == 200, r.text
    by_request = {}
    for job in _jobs(api.service):
        by_request.setdefault(job.params.get("request_id"), []).append(job.operation)
    assert by_request["ctx-create"] == ["create"]
    assert by_request["ctx-start"] == ["action"]


def test_a_request_without_an_id_gets_one_and_its_jobs_carry_it(api):
    r = api.post("/storage/", {"kind": INFRA + "storage", "attributes": {"occi.storage.size": 1}})
    assert r.status_code == 201, r.text
    rid = r.headers["x-request-id"]
    assert [j.params.get("request_id") for j in _jobs(api.service)] == [rid]


def test_the_service_called_directly_takes_a_context(api):
    ctx = RequestContext.system("cli-7")
    made = api.service.create(ctx, "/compute/", [Resource(infra.COMPUTE.id, "direct-1")])
    assert made[0].location == "/compute/direct-1"
    assert api.service.get(ctx, infra.COMPUTE, "direct-1").id == "direct-1"
    api.service.delete(ctx, infra.COMPUTE.id, "direct-1")
    ops = [(j.operation, j.params.get("request_id")) for j in _jobs(api.service)]
    assert ops == [("delete", "cli-7"), ("create", "cli-7")]


def test_contexts():
    anon = RequestContext.anonymous("r1")
    assert (anon.user, anon.project, anon.roles, anon.request_id) == (
        None,
        DEFAULT_PROJECT,
        frozenset(),
        "r1",
    )
    system = RequestContext.system()
    assert system.project is None and system.is_system and len(system.request_id) == 32
    assert not anon.is_system

"""What the console asks of the service layer besides the API's calls, called directly with
request contexts: a project's quota use, which entities have work under way, and the
administration of identities (administrators only; events scoped to the project)."""

from __future__ import annotations

import pytest

from occi import errors
from occi.api.wsgi import build
from occi.context import RequestContext
from occi.identity import audit
from occi.identity.service import IdentityService
from occi.model import Entity, Resource
from occi.settings import Settings

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
ADMIN = RequestContext("root", None, frozenset({"admin"}))


def member(project: str = "default") -> RequestContext:
    return RequestContext("mia", project, frozenset({"member"}))


@pytest.fixture
def service(tmp_path):
    settings = Settings.from_mapping(
        {
            "database_url": f"sqlite:///{tmp_path}/s.db",
            "auth": "none",
            "quota_cores": "6",
            "job_wait": "0",
        }  # fmt: skip
    )
    _, service = build(settings, upgrade=True, run_jobs=False)
    yield service
    service.store.close()
    service.backend.close()


def compute(cores: int) -> Entity:
    return Resource(INFRA + "compute", attributes={"occi.compute.cores": cores})


def test_quota_usage_sums_the_project_s_own_entities(service):
    ctx = member()
    service.create(ctx, "/compute/", [compute(2), compute(3)])
    usage = service.quota_usage(ctx)
    assert usage["instances"] == (2.0, -1)
    assert usage["cores"] == (5.0, 6)
    assert usage["volumes"] == (0.0, -1)
    nobody = RequestContext("eve", "default", frozenset())
    with pytest.raises(errors.Forbidden):
        service.quota_usage(nobody)


def test_busy_names_the_entities_with_unfinished_work_of_the_project_only(service):
    ctx = member()
    (made,) = service.create(ctx, "/compute/", [compute(1)])  # no runner: its job waits
    assert service.busy(ctx, [made.id, "no-such-id"]) == {made.id}
    assert service.busy(member("elsewhere"), [made.id]) == set()  # not theirs: not seen


def test_identity_administration_is_for_administrators_only(service):
    identity = IdentityService(service.store)
    for call in (
        lambda c: identity.projects(c),
        lambda c: identity.create_user(c, "bob", "long-password"),
        lambda c: identity.grant(c, "bob", "default", "member"),
        lambda c: identity.set_quota(c, "default", "cores", 4),
    ):
        with pytest.raises(errors.Forbidden):
            call(member())
    identity.create_project(ADMIN, "team")
    identity.create_user(ADMIN, "bob", "long-password")
    assert identity.grant(ADMIN, "bob", "team", "reader") is True
    assert [(a.user_name, a.role, a.project_name) for a in identity.roles(ADMIN)] == [
        ("bob", "reader", "team")
    ]
    with pytest.raises(errors.BadRequest):
        identity.create_user(ADMIN, "short", "2short")
    with pytest.raises(errors.Conflict):
        identity.delete_user(ADMIN, "root")  # oneself
    identity.set_quota(ADMIN, "team", "instances", 3)
    limits = {q.resource: q.limit for q in identity.quotas(ADMIN, "team")}
    assert limits["instances"] == 3


def test_events_are_the_project_s_for_members_and_everyone_s_for_admins(service):
    for project in ("default", "other"):
        audit.record(service.store, operation="create compute", status=201, user="u",
                     project=project, request_id=None, entity=f"/compute/{project}",
                     result=None)  # fmt: skip
    identity = IdentityService(service.store)
    assert [e.entity for e in identity.events(member())] == ["/compute/default"]
    assert {e.entity for e in identity.events(ADMIN)} == {"/compute/default", "/compute/other"}
    with pytest.raises(errors.Forbidden):
        identity.events(RequestContext("eve", "default", frozenset()))


def test_the_login_page_offers_what_the_auth_setting_takes(tmp_path):
    """Passwords only where the API takes Basic credentials (or authenticates nobody)."""
    from falcon import testing

    for auth, form in (("token", False), ("basic,token", True), ("none", True)):
        settings = Settings.from_mapping(
            {"database_url": f"sqlite:///{tmp_path}/{auth.replace(',', '-')}.db", "auth": auth}
        )
        app, service = build(settings, upgrade=True, run_jobs=False)
        try:
            client = testing.TestClient(app)
            page = client.simulate_get("/console/login")
            assert page.status_code == 200
            assert ('name="password"' in page.text) is form, auth
            if not form:
                token = page.cookies["occi_console_login"].value
                r = client.simulate_post(
                    "/console/login",
                    body=f"login_token={token}&username=a&password=b",
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "Cookie": f"occi_console_login={token}"},
                )  # fmt: skip
                assert r.status_code == 403 and "takes no passwords" in r.text
        finally:
            service.store.close()
            service.backend.close()

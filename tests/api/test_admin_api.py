"""The JSON admin API of the inventory (/-/admin/): zones, clusters and hosts built and taken
apart by an administrator over HTTP through the real app, authentication on, on SQLite and
PostgreSQL; members get 403 and never see a host, anonymous gets 401; errors are JSON with
their code; secrets never come back; every write is in the audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from falcon import testing

from occi.api.wsgi import build
from occi.identity.passwords import hash_password
from occi.identity.store import IdentityTx
from occi.settings import Settings
from occi.store.inventory_sql import clusters, hosts
from occi.store.sql import events
from tests.test_inventory import insert_entity

ADMIN = "/-/admin"


@dataclass
class Admin:
    client: testing.TestClient
    service: object
    tokens: dict[str, str]

    def call(self, who: str, method: str, path: str, body=None, **params):
        headers = {"Accept": "application/json"}
        if who != "anonymous":
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return self.client.simulate_request(
            method, ADMIN + path, body=body, headers=headers, params=params or None
        )

    def ok(self, method: str, path: str, body=None, status: int = 200, **params):
        r = self.call("admin", method, path, body, **params)
        assert r.status_code == status, r.text
        return r.json


@pytest.fixture
def admin(db_url):
    settings = Settings.from_mapping(
        {"database_url": db_url, "auth": "basic,token", "secret_key": "a test key, long enough"}
    )
    app, service = build(settings, upgrade=True, run_jobs=False)
    tokens = {}
    with service.store.begin() as tx:
        ids = IdentityTx(tx)
        ids.create_project("alpha")
        for name, project, role in (("member", "alpha", "member"), ("root", None, "admin")):
            ids.create_user(name, password_hash=hash_password(f"{name}-password"))
            ids.grant(name, project, role)
            tokens["admin" if name == "root" else name] = ids.create_token(name)[1]
    yield Admin(testing.TestClient(app), service, tokens)
    service.store.close()
    service.backend.close()


def test_an_admin_builds_a_small_cloud_and_takes_it_apart(admin):
    # the shorthand's zone, cluster and three simulated hosts are there from the start
    assert [z["name"] for z in admin.ok("GET", "/zones")["zones"]] == ["default"]
    assert [h["name"] for h in admin.ok("GET", "/hosts")["hosts"]] == ["sim1", "sim2", "sim3"]

    zone = admin.ok("POST", "/zones", {"name": "z1"}, status=201)
    assert zone["name"] == "z1" and zone["clusters"] == 0
    cluster = admin.ok(
        "POST",
        "/clusters",
        {
            "name": "c1",
            "zone": "z1",
            "backend": "simulator",
            "cpu_overcommit": 2,
            "memory_overcommit": 1.5,
            "settings": {"simulator_delay": "0", "simulator_api_password": "s3cret"},
            "tags": ["ssd"],
        },
        status=201,
    )
    assert cluster["settings"] == {"simulator_api_password": "********", "simulator_delay": "0"}
    assert cluster["origin"] == "admin" and cluster["tags"] == ["ssd"]
    host = admin.ok(
        "POST", "/hosts", {"name": "s1", "cluster": "c1", "cores": 16, "memory_gb": 64}, 201
    )
    assert (host["cores"], host["memory_mb"], host["allocatable_cores"]) == (16, 65536, 32)
    assert host["allocatable_memory_mb"] == 98304
    assert (host["state"], host["admin_state"], host["vms"]) == ("up", "enabled", 0)
    # a host the simulator declares: its size is read from the platform
    read = admin.ok("POST", "/hosts", {"name": "sim1x", "cluster": "c1", "uri": "sim2"}, 201)
    assert (read["cores"], read["memory_mb"]) == (256, 1024 * 1024)

    assert [h["name"] for h in admin.ok("GET", "/hosts", cluster="c1")["hosts"]] == [
        "s1",
        "sim1x",
    ]
    assert admin.ok("GET", "/clusters", zone="z1")["clusters"][0]["hosts"] == 2
    changed = admin.ok("PATCH", "/hosts/s1", {"cores": 32, "tags": ["gpu"]})
    assert (changed["cores"], changed["tags"]) == (32, ["gpu"])
    changed = admin.ok(
        "PATCH", "/clusters/c1", {"cpu_overcommit": 4, "settings": {"simulator_delay": None}}
    )
    assert changed["settings"] == {"simulator_api_password": "********"}
    assert admin.ok("GET", "/hosts/s1")["allocatable_cores"] == 128

    assert admin.ok("POST", "/hosts/s1/disable")["admin_state"] == "disabled"
    assert admin.ok("POST", "/hosts/s1/enable")["admin_state"] == "enabled"
    assert admin.ok("POST", "/hosts/s1/maintenance")["admin_state"] == "maintenance"
    r = admin.call("admin", "POST", "/hosts/s1/enable")
    assert r.status_code == 409 and "cancel-maintenance" in r.json["error"]["message"]
    assert admin.ok("POST", "/hosts/s1/cancel-maintenance")["admin_state"] == "enabled"

    r = admin.call("admin", "DELETE", "/zones/z1")
    assert r.status_code == 409 and "c1" in r.json["error"]["message"]
    r = admin.call("admin", "DELETE", "/clusters/c1")
    assert r.status_code == 409 and "s1" in r.json["error"]["message"]
    for path in ("/hosts/s1", "/hosts/sim1x", "/clusters/c1", "/zones/z1"):
        assert admin.ok("DELETE", path) == {"deleted": path.rsplit("/", 1)[1]}
    r = admin.call("admin", "GET", "/zones/z1")
    assert r.status_code == 404 and r.headers["x-occi-error-code"] == "not_found"


def test_secrets_are_encrypted_in_the_row_and_never_shown(admin):
    admin.ok("POST", "/zones", {"name": "z1"}, status=201)
    doc = {
        "name": "c1",
        "zone": "z1",
        "backend": "simulator",
        "settings": {
            "simulator_token": "tok-123456",
            "simulator_database_url": "postgresql://u:pw-9876@db/x",
        },
    }
    shown = admin.ok("POST", "/clusters", doc, status=201)
    assert shown["settings"] == {
        "simulator_database_url": "postgresql://u:********@db/x",
        "simulator_token": "********",
    }
    listed = json.dumps(admin.ok("GET", "/clusters"))
    assert "tok-123456" not in listed and "pw-9876" not in listed
    with admin.service.store.begin(readonly=True) as tx:
        raw = tx.conn.execute(
            sa.select(clusters.c.settings).where(clusters.c.name == "c1")
        ).scalar_one()
    assert "tok-123456" not in raw and "pw-9876" not in raw and "simulator_token" not in raw


def test_members_are_forbidden_everything_and_anonymous_must_sign_in(admin):
    admin.ok("POST", "/zones", {"name": "z1"}, status=201)
    for method, path, body in (
        ("GET", "/hosts", None),
        ("GET", "/hosts/sim1", None),
        ("GET", "/zones", None),
        ("GET", "/clusters/default", None),
        ("POST", "/zones", {"name": "z2"}),
        ("PATCH", "/zones/z1", {"name": "z3"}),
        ("DELETE", "/zones/z1", None),
        ("POST", "/hosts/sim1/maintenance", None),
    ):
        r = admin.call("member", method, path, body)
        assert r.status_code == 403, (method, path, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert r.json["error"]["error_code"] == "forbidden"
        assert "sim1" not in r.text
        assert admin.call("anonymous", method, path, body).status_code == 401
    assert [z["name"] for z in admin.ok("GET", "/zones")["zones"]] == ["default", "z1"]
    assert admin.ok("GET", "/hosts/sim1")["admin_state"] == "enabled"


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/zones", {"name": ""}, "invalid zone name"),
        ("/zones", {"name": "x" * 64}, "1 to 63"),
        ("/zones", {"name": "a b"}, "invalid zone name"),
        ("/zones", {"name": "z", "colour": "red"}, "unknown field"),
        ("/zones", "not json", "JSON object"),
        ("/zones", [1, 2], "JSON object"),
        ("/clusters", {"name": "c", "zone": "default", "backend": "vmware"}, "unknown backend"),
        (
            "/clusters",
            {"name": "c", "zone": "default", "backend": "simulator", "cpu_overcommit": 0},
            "above 0 and at most 64",
        ),
        (
            "/clusters",
            {"name": "c", "zone": "default", "backend": "simulator", "memory_overcommit": 65},
            "above 0 and at most 64",
        ),
        (
            "/clusters",
            {"name": "c", "zone": "default", "backend": "simulator", "cpu_overcommit": "NaN"},
            "above 0",
        ),
        (
            "/clusters",
            {"name": "c", "zone": "default", "backend": "simulator", "tags": ["t"] * 17},
            "at most 16",
        ),
        (
            "/clusters",
            {"name": "c", "zone": "default", "backend": "simulator", "tags": ["a b"]},
            "invalid tag",
        ),
        (
            "/clusters",
            {
                "name": "c",
                "zone": "default",
                "backend": "simulator",
                "settings": {"libvirt_uri": "x"},
            },
            "not an option of the simulator backend",
        ),
        ("/hosts", {"name": "h", "cluster": "default", "cores": 0, "memory_gb": 1}, "cores"),
        ("/hosts", {"name": "h", "cluster": "default", "cores": 10**9, "memory_gb": 1}, "cores"),
        ("/hosts", {"name": "h", "cluster": "default", "cores": 1.5, "memory_gb": 1}, "whole"),
        ("/hosts", {"name": "h", "cluster": "default", "cores": True, "memory_gb": 1}, "whole"),
        ("/hosts", {"name": "h", "cluster": "default", "cores": 4, "memory_gb": -1}, "memory_gb"),
        ("/hosts", {"name": "h", "cluster": "default", "uri": "unknown-host"}, "give cores"),
    ],
)
def test_bad_input_is_a_400_saying_what_to_send(admin, path, body, words):
    r = admin.call("admin", "POST", path, body)
    assert r.status_code == 400, r.text
    assert words in r.json["error"]["message"]
    assert r.headers["x-occi-error-code"] == "bad_request"


def test_taken_names_unknown_names_and_unknown_actions(admin):
    r = admin.call("admin", "POST", "/zones", {"name": "default"})
    assert r.status_code == 409 and r.json["error"]["error_code"] == "name_taken"
    r = admin.call(
        "admin",
        "POST",
        "/hosts",
        {"name": "sim1", "cluster": "default", "cores": 1, "memory_gb": 1},
    )
    assert r.status_code == 409
    r = admin.call(
        "admin", "POST", "/clusters", {"name": "c", "zone": "nowhere", "backend": "simulator"}
    )
    assert r.status_code == 404 and "nowhere" in r.json["error"]["message"]
    assert admin.call("admin", "POST", "/hosts/sim1/reboot").status_code == 404
    r = admin.call("admin", "PUT", "/zones/default", {"name": "x"})
    assert r.status_code == 405 and r.headers["content-type"].startswith("application/json")


def test_a_host_with_entities_placed_on_it_is_not_deleted(admin):
    host = admin.ok("GET", "/hosts/sim2")
    insert_entity(admin.service.store, "vm1", host_id=host["id"])  # placement's work
    assert admin.ok("GET", "/hosts/sim2")["vms"] == 1
    r = admin.call("admin", "DELETE", "/hosts/sim2")
    assert r.status_code == 409 and "/compute/vm1" in r.json["error"]["message"]
    with admin.service.store.begin(readonly=True) as tx:
        assert tx.conn.execute(sa.select(hosts.c.id).where(hosts.c.name == "sim2")).first()


def test_admin_writes_are_audited_and_refusals_too(admin):
    admin.ok("POST", "/zones", {"name": "z1"}, status=201)
    admin.call("member", "DELETE", "/zones/z1")
    admin.ok("POST", "/hosts/sim1/maintenance")
    with admin.service.store.begin(readonly=True) as tx:
        rows = tx.conn.execute(
            sa.select(events.c.operation, events.c.status, events.c.user_name, events.c.entity)
            .where(events.c.operation.like("admin %"))
            .order_by(events.c.seq)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("admin create zone", 201, "root", "/-/admin/zones/z1"),
        ("admin delete zone", 403, "member", "/-/admin/zones/z1"),
        ("admin maintenance host", 200, "root", "/-/admin/hosts/sim1/maintenance"),
    ]


def test_the_audit_log_is_read_by_administrators_only(admin):
    admin.ok("POST", "/zones", {"name": "z1"}, status=201)
    admin.call("member", "DELETE", "/zones/z1")
    found = admin.ok("GET", "/events", user="member")["events"]
    assert [(e["operation"], e["status"], e["user"]) for e in found] == [
        ("admin delete zone", 403, "member")
    ]
    newest = admin.ok("GET", "/events", limit="1", since="1h")["events"]
    assert [e["operation"] for e in newest] == ["admin delete zone"]
    assert admin.ok("GET", "/events", since="2000-01-01T00:00")["events"][-1]["user"] == "root"
    r = admin.call("member", "GET", "/events")
    assert r.status_code == 403 and r.json["error"]["error_code"] == "forbidden"
    assert admin.call("anonymous", "GET", "/events").status_code == 401
    for params, words in (
        ({"limit": "0"}, "limit must be"),
        ({"limit": "x" * 300}, "limit must be"),
        ({"limit": "99999999999999999999"}, "limit must be"),
        ({"since": "yesterday"}, "neither an age"),
        ({"user": "u" * 300}, "longer than 255"),
        ({"project": "a\x00b"}, "control character"),
    ):
        r = admin.call("admin", "GET", "/events", **params)
        assert r.status_code == 400 and words in r.json["error"]["message"], (params, r.text)

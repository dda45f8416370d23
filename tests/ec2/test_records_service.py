"""The service's EC2 records (occi.service.ec2_records) called directly, as the EC2 front calls
them: another project sees none of the first project's key pairs, tags or instance records and
cannot change them, a reader reads but cannot create a key pair or tag, and a project with no
role on the context is refused. Real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from occi import errors
from occi.api.wsgi import build
from occi.context import RequestContext
from occi.identity.store import IdentityTx
from occi.service import Service
from occi.service.ec2_records import InstanceRecord, KeyPair
from occi.settings import Settings
from occi.store.sql import SqlTx


def _ctx(user: str, project: str, role: str) -> RequestContext:
    return RequestContext(user, project, frozenset({role}), project_name=user)


@pytest.fixture
def service(db_url: str) -> Iterator[Service]:
    settings = Settings.from_mapping({"database_url": db_url, "auth": "none"})
    _, made = build(settings, upgrade=True, run_jobs=False)
    try:
        yield made
    finally:
        made.store.close()


def _projects(service: Service) -> tuple[str, str]:
    with service.store.begin() as tx:
        assert isinstance(tx, SqlTx)
        ident = IdentityTx(tx)
        return ident.create_project("alpha").id, ident.create_project("beta").id


def test_another_projects_records_are_invisible(service: Service) -> None:
    alpha, beta = _projects(service)
    a, b = _ctx("alice", alpha, "member"), _ctx("bob", beta, "member")
    records = service.ec2_records
    now = datetime.now(UTC)
    pair = KeyPair("key-a1", "shared-name", "ff", "rsa", "ssh-rsa AAAA", now)
    assert records.add_keypair(a, pair, [("team", "a")])
    records.record_instances(a, [InstanceRecord("e-1", "r-1", "shared-name", now)], ["i-1"], [])
    assert records.set_tags(a, ["vol-1"], [("Name", "data")])

    # beta sees nothing of alpha's, and its writes do not reach alpha's rows
    assert records.keypairs(b) == []
    assert records.tags(b) == {}
    assert records.tags(b, ["key-a1", "vol-1"]) == {}
    assert records.instances(b) == ({}, {})
    records.delete_keypairs(b, "shared-name", "key-a1")
    records.delete_tags(b, ["vol-1", "key-a1"])
    records.tidy_instances(b, now + timedelta(days=1), ["e-1"])
    # a name taken in alpha is free in beta
    assert records.add_keypair(b, KeyPair("key-b1", "shared-name", "ee", "rsa", "x", now))

    assert [p.id for p in records.keypairs(a)] == ["key-a1"]
    assert records.tags(a) == {"key-a1": {"team": "a"}, "vol-1": {"Name": "data"}}
    seen, _ = records.instances(a)
    assert set(seen) == {"e-1"} and seen["e-1"].terminated_at is None
    assert [p.id for p in records.keypairs(b)] == ["key-b1"]
    # within alpha, the name is taken
    assert not records.add_keypair(a, KeyPair("key-a2", "shared-name", "dd", "rsa", "y", now))


def test_roles(service: Service) -> None:
    alpha, _ = _projects(service)
    records = service.ec2_records
    member, reader = _ctx("alice", alpha, "member"), _ctx("rita", alpha, "reader")
    nobody = RequestContext("nora", alpha, frozenset(), project_name="alpha")
    now = datetime.now(UTC)
    assert records.add_keypair(member, KeyPair("key-1", "mine", "ff", "rsa", "ssh-rsa A", now))

    with pytest.raises(errors.Forbidden):
        records.add_keypair(reader, KeyPair("key-2", "hers", "ff", "rsa", "ssh-rsa B", now))
    for write in (
        lambda: records.set_tags(reader, ["key-1"], [("k", "v")]),
        lambda: records.delete_tags(reader, ["key-1"]),
        lambda: records.delete_keypairs(reader, "mine", None),
        lambda: records.record_instances(reader, [InstanceRecord("e", "r", None, now)]),
    ):
        with pytest.raises(errors.Forbidden):
            write()
    # the reader reads, and nothing it tried was kept
    assert [p.name for p in records.keypairs(reader)] == ["mine"]
    assert records.tags(reader) == {}
    assert records.instances(reader) == ({}, {})
    # no role in the project: not even a read
    with pytest.raises(errors.Forbidden):
        records.keypairs(nobody)
    with pytest.raises(errors.Forbidden):
        records.tags(nobody)


def test_a_tag_limit_keeps_none_of_the_tags(service: Service) -> None:
    alpha, _ = _projects(service)
    a = _ctx("alice", alpha, "member")
    records = service.ec2_records
    assert records.set_tags(a, ["vol-1"], [("k1", "v"), ("k2", "v")], most=2)
    assert not records.set_tags(a, ["vol-1", "vol-2"], [("k3", "v")], most=2)
    assert records.tags(a) == {"vol-1": {"k1": "v", "k2": "v"}}

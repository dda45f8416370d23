"""The EC2 front's rows (occi.store.ec2_rows) on SQLite and PostgreSQL: tombstones forgotten after
their hour with their tags, records of computes deleted through OCCI dropped, key pair names
unique per project only, and one project's rows invisible to another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from occi.identity.store import IdentityTx
from occi.store import make_store
from occi.store.ec2_rows import InstanceRecord, KeyPair, Records


def test_records(db_url: str) -> None:
    store = make_store(db_url)
    store.upgrade()
    try:
        with store.begin() as tx:
            ident = IdentityTx(tx)  # type: ignore[arg-type]
            a, b = ident.create_project("a").id, ident.create_project("b").id
        now = datetime.now(UTC)
        old = now - timedelta(hours=2)
        with store.begin() as tx:
            rec = Records(tx.conn, a)  # type: ignore[attr-defined]
            for eid in ("gone", "live", "dropped"):
                rec.record_instance(InstanceRecord(eid, "r-1", None, old))
            rec.terminate(
                "gone", {"instanceId": "i-gone"}, InstanceRecord("gone", "r-1", None, old)
            )
            rec.set_tags(["i-gone", "i-live"], [("k", "v")])
            pair = KeyPair("key-1", "mine", "ff", "rsa", "ssh-rsa AAAA", now)
            assert rec.add_keypair(pair)
            assert not rec.add_keypair(KeyPair("key-2", "mine", "ff", "rsa", "x", now))
            other = Records(tx.conn, b)  # type: ignore[attr-defined]
            assert other.add_keypair(KeyPair("key-3", "mine", "ff", "rsa", "x", now))
            assert other.instances() == {} and other.tags() == {}
        with store.begin() as tx:
            rec = Records(tx.conn, a)  # type: ignore[attr-defined]
            rec.purge(now - timedelta(hours=1))  # "gone" was terminated just now: it stays
            assert set(rec.instances()) == {"gone", "live", "dropped"}
            rec.purge(now + timedelta(hours=2))
            rec.forget(["dropped", "gone"])
            assert set(rec.instances()) == {"live"}
            assert rec.tags() == {"i-live": {"k": "v"}}
            assert [k.name for k in rec.keypairs()] == ["mine"]
    finally:
        store.close()

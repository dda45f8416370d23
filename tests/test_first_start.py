"""The first start (occi.identity.first_start): `occi-server serve` on a database without users
makes admin, project demo and demo, and writes their passwords once to a file only its owner
reads; later starts, and the servers that lose a race to it, change nothing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from occi.identity.passwords import verify_password
from tests.live import ROOT, LiveServer

pytestmark = pytest.mark.server


def _cli(tmp: Path, db: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
    full.update({"PYTHONPATH": str(ROOT), "OCCI_DATABASE_URL": db, **env})
    return subprocess.run(
        [sys.executable, "-m", "occi.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=full,
        timeout=120,
    )


def _read(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def _hashes(db: str) -> dict[str, str]:
    engine = sa.create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, password_hash FROM users")).all()
    engine.dispose()
    return {r.name: r.password_hash for r in rows}


def test_first_start_makes_admin_and_demo_once(tmp_path):
    db = f"sqlite:///{tmp_path}/occi.db"
    srv = LiveServer(tmp_path, database_url=db, workers=2, auth="basic,token")
    try:
        log = srv.output()
    finally:
        srv.stop()
    path = tmp_path / "occi-credentials"  # beside the SQLite file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = _read(path)
    assert values["OCCI_ADMIN_USER"] == "admin" and values["OCCI_DEMO_USER"] == "demo"
    admin, demo = values["OCCI_ADMIN_PASSWORD"], values["OCCI_DEMO_PASSWORD"]
    assert len(admin) >= 16 and len(demo) >= 16 and admin != demo
    assert str(path) in log and "WARNING" in log
    assert admin not in log and demo not in log
    hashes = _hashes(db)
    assert verify_password(hashes["admin"], admin) and verify_password(hashes["demo"], demo)
    # the file is a shell fragment
    sh = subprocess.run(
        ["sh", "-c", '. "$1" && printf %s "$OCCI_DEMO_PASSWORD"', "sh", str(path)],
        capture_output=True,
        text=True,
    )
    assert sh.stdout == demo

    users = _cli(tmp_path, db, "users", "list")
    assert users.returncode == 0, users.stderr
    roles = {line.split()[0]: line.split()[2] for line in users.stdout.splitlines()[1:]}
    assert roles == {"admin": "admin", "demo": "member@demo"}
    projects = _cli(tmp_path, db, "projects", "list").stdout
    assert any(line.startswith("demo ") for line in projects.splitlines())

    before = (path.read_bytes(), path.stat().st_mtime_ns, _hashes(db))
    again = LiveServer(tmp_path, database_url=db, auth="basic,token")
    try:
        log = again.output()
    finally:
        again.stop()
    assert (path.read_bytes(), path.stat().st_mtime_ns, _hashes(db)) == before
    assert "first start" not in log


def test_no_first_start_without_authentication(tmp_path):
    srv = LiveServer(tmp_path, auth="none")
    srv.stop()
    assert not (tmp_path / "occi-credentials").exists()
    assert _hashes(f"sqlite:///{tmp_path}/occi.db") == {}


def test_credentials_file_setting_and_existing_file(tmp_path):
    db = f"sqlite:///{tmp_path}/occi.db"
    target = tmp_path / "secrets" / "occi.env"
    target.parent.mkdir()
    target.write_text("someone else's\n")
    r = _cli(
        tmp_path, db, "--bind", "127.0.0.1:1", OCCI_CREDENTIALS_FILE=str(target), OCCI_AUTH="basic"
    )
    assert r.returncode == 1
    assert str(target) in r.stderr and "exists already" in r.stderr
    assert target.read_text() == "someone else's\n"  # never overwritten
    assert _hashes(db) == {}  # and nothing made whose passwords nobody could read
    target.unlink()
    srv = LiveServer(tmp_path, database_url=db, credentials_file=str(target), auth="basic,token")
    srv.stop()
    assert set(_read(target)) >= {"OCCI_ADMIN_PASSWORD", "OCCI_DEMO_PASSWORD"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not (tmp_path / "occi-credentials").exists()


@pytest.mark.postgres
def test_servers_racing_on_postgresql_make_one_admin(tmp_path, pg_url):
    servers: list[LiveServer] = []
    failures: list[BaseException] = []
    dirs = [tmp_path / f"s{i}" for i in range(3)]

    def start(d: Path) -> None:
        d.mkdir()
        try:
            servers.append(LiveServer(d, database_url=pg_url, workers=1, auth="basic,token"))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(d,)) for d in dirs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in servers:
        s.stop()
    assert not failures, failures
    files = [d / "occi-credentials" for d in dirs if (d / "occi-credentials").exists()]
    assert len(files) == 1, files
    hashes = _hashes(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    assert sorted(hashes) == ["admin", "demo"]
    values = _read(files[0])
    assert verify_password(hashes["admin"], values["OCCI_ADMIN_PASSWORD"])
    assert verify_password(hashes["demo"], values["OCCI_DEMO_PASSWORD"])

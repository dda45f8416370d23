"""The `occi-server` command as a user runs it: a real process, its exit code and its output.

Options before and after the command, mistyped options, settings precedence down to the
gunicorn workers, backends that cannot load, SQLite paths, and `status`.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[1]
JSON = "application/occi+json"
INFRA = "http://schemas.ogf.org/occi/infrastructure#"


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
    env.update({"PYTHONPATH": str(ROOT), "OCCI_LOG_LEVEL": "WARNING", "OCCI_AUTH": "none"})
    env.update(extra)
    return env


def occi_server(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "occi.cli", *args],
        cwd=tmp_path,
        env=env_for(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(p: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert p.returncode == code, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    lines = [line for line in p.stderr.splitlines() if line.startswith("occi-server")]
    assert len(lines) == 1, p.stderr
    return lines[0]


# ------------------------------------------------------------------ options
@pytest.mark.parametrize(
    "args",
    [
        ["--database-url", "{url}", "migrate"],
        ["migrate", "--database-url", "{url}"],
        ["--config", "{ini}", "migrate"],
        ["migrate", "--config", "{ini}"],
    ],
)
def test_global_options_before_and_after_the_command(tmp_path, args):
    db = tmp_path / "given.db"
    ini = tmp_path / "occi.ini"
    ini.write_text(f"[occi]\ndatabase_url = sqlite:///{db}\n")
    argv = [a.format(url=f"sqlite:///{db}", ini=ini) for a in args]
    p = occi_server(tmp_path, *argv)
    assert p.returncode == 0, p.stderr
    assert db.exists()
    assert not (tmp_path / "occi.db").exists()


@pytest.mark.parametrize(
    "args, named, hint",
    [
        (["--bnd", "127.0.0.1:1"], "--bnd", "--bind"),
        (["serve", "--bnd", "127.0.0.1:1"], "--bnd", "--bind"),
        (["--datbase-url", "sqlite:///x.db", "status"], "--datbase-url", "--database-url"),
        (["status", "--job", "3"], "--job", "--jobs"),
    ],
)
def test_mistyped_option_is_named(tmp_path, args, named, hint):
    p = occi_server(tmp_path, *args)
    assert p.returncode == 2
    assert f"unknown option {named} (did you mean {hint}?)" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[server]\nbind = x\n", "no [occi] section"),
        ("[occi]\njob_wiat = 0\n", "line 2: unknown setting 'job_wiat' (did you mean job_wait?)"),
        ("[occi]\n= 0\n", "line 2"),
    ],
)
def test_bad_config_file_is_one_line(tmp_path, text, expected):
    ini = tmp_path / "occi.ini"
    ini.write_text(text)
    line = assert_one_line_error(occi_server(tmp_path, "--config", str(ini), "migrate"))
    assert expected in line and str(ini) in line


def test_unknown_environment_variable_is_a_warning(tmp_path):
    p = occi_server(
        tmp_path, "migrate", OCCI_JOBWAIT="0", OCCI_LOG_LEVEL="INFO", OCCI_SIMULATOR_DELAY="1"
    )
    assert p.returncode == 0, p.stderr
    assert "OCCI_JOBWAIT is neither a setting nor a backend option" in p.stderr
    assert "did you mean job_wait" in p.stderr
    assert "SIMULATOR_DELAY" not in p.stderr


# ------------------------------------------------------------------ settings reach the workers
def test_job_wait_zero_answers_at_once_with_bind(tmp_path):
    """OCCI_JOB_WAIT=0 with --bind: the create answers before its job has run (the simulator
    takes 3 s per operation). --bind used to reset job_wait to 10, and the worker then ran the
    job inline and answered once it was done."""
    port = free_port()
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "occi.cli", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=tmp_path,
        env=env_for(tmp_path, OCCI_JOB_WAIT="0", OCCI_SIMULATOR_DELAY="3"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert proc.poll() is None, log.seek(0) or log.read()
            try:
                requests.get(url + "/-/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        r = requests.post(
            url + "/compute/",
            json={"kind": INFRA + "compute", "attributes": {"occi.core.title": "at once"}},
            headers={"Content-Type": JSON, "Accept": JSON},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        assert r.json()["attributes"]["occi.compute.state.message"] == "creating", r.text
        status = occi_server(tmp_path, "status")
        assert "pending" in status.stdout or "running" in status.stdout, status.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


# ------------------------------------------------------------------ backends
def test_unknown_backend_is_refused_before_anything(tmp_path):
    port = free_port()
    p = occi_server(tmp_path, "--backend", "opennebula", "--bind", f"127.0.0.1:{port}")
    line = assert_one_line_error(p)
    assert "no backend named 'opennebula'" in line and "simulator" in line
    assert not (tmp_path / "occi.db").exists()


@pytest.fixture
def broken_backend(tmp_path) -> dict[str, str]:
    """An installed distribution whose backend needs an SDK that is not installed."""
    site = tmp_path / "site"
    dist = site / "occi_broken-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: occi-broken\nVersion: 1.0\nProvides-Extra: sdk\n"
    )
    (dist / "entry_points.txt").write_text(
        "[occi.backends]\nbroken = occi_broken_backend:Backend [sdk]\n"
    )
    (site / "occi_broken_backend.py").write_text("import an_sdk_that_is_not_installed\n")
    return {"PYTHONPATH": f"{ROOT}{os.pathsep}{site}"}


def test_backend_without_its_sdk_says_what_to_install(tmp_path, broken_backend):
    p = occi_server(tmp_path, "backends", **broken_backend)
    assert p.returncode == 0, p.stderr
    lines = {line.split()[0]: line for line in p.stdout.splitlines()}
    assert lines["simulator"].split()[1:] == ["usable"]
    assert "not usable" in lines["broken"]
    assert "pip install 'occi-broken[sdk]'" in lines["broken"]

    port = free_port()
    p = occi_server(
        tmp_path, "serve", "--backend", "broken", "--bind", f"127.0.0.1:{port}", **broken_backend
    )
    line = assert_one_line_error(p)
    assert "an_sdk_that_is_not_installed" in line
    assert line.endswith("pip install 'occi-broken[sdk]'")
    assert not (tmp_path / "occi.db").exists()


# ------------------------------------------------------------------ SQLite paths
def test_missing_sqlite_directory_is_an_error_for_every_command(tmp_path):
    url = f"sqlite:///{tmp_path}/typo/occi.db"
    for command in ("migrate", "serve", "status"):
        line = assert_one_line_error(occi_server(tmp_path, command, "--database-url", url))
        assert f"{tmp_path}/typo" in line and "does not exist" in line
    assert not (tmp_path / "typo").exists()


def test_status_on_a_missing_file_is_an_error_not_a_new_database(tmp_path):
    db = tmp_path / "ocic.db"
    line = assert_one_line_error(
        occi_server(tmp_path, "status", "--database-url", f"sqlite:///{db}")
    )
    assert str(db) in line
    assert not db.exists()
    # migrate creates it in an existing directory; status then works
    assert occi_server(tmp_path, "migrate", "--database-url", f"sqlite:///{db}").returncode == 0
    assert occi_server(tmp_path, "status", "--database-url", f"sqlite:///{db}").returncode == 0


# ------------------------------------------------------------------ status
def test_status_shows_a_silent_server_as_dead(tmp_path):
    from occi.store import make_store

    url = f"sqlite:///{tmp_path}/occi.db"
    store = make_store(url)
    store.upgrade()
    with store.begin() as tx:
        tx.jobs.register_server("silent-server", "host", 1)
        tx.jobs.register_server("lively-server", "host", 2)
    store.close()
    with sqlite3.connect(tmp_path / "occi.db") as conn:
        conn.execute(
            "UPDATE servers SET heartbeat_at = heartbeat_at - 60 WHERE id = ?", ("silent-server",)
        )
    p = occi_server(tmp_path, "status", OCCI_DATABASE_URL=url, OCCI_DEAD_AFTER="6")
    assert p.returncode == 0, p.stderr
    rows = {line.split()[0]: line.split()[1] for line in p.stdout.splitlines() if "-server" in line}
    assert rows == {"silent-server": "dead", "lively-server": "alive"}

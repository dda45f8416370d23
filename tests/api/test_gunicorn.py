"""End to end: the real `occi-server` command, gunicorn with several workers, real HTTP.

Runs the curl walkthroughs in examples/ against it, on SQLite and on a throwaway PostgreSQL, with
authentication on, as the user `demo` its first start made (occi.identity.first_start).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from occi.identity import audit
from occi.store import make_store
from tests.live import ROOT, LiveServer

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
JSON = "application/occi+json"


class Server(LiveServer):
    """`occi-server` with several workers on `database_url`."""

    def __init__(self, database_url: str, tmp: Path, workers: int = 3, auth: str = "none"):
        super().__init__(tmp, database_url=database_url, workers=workers, auth=auth)
        #: the passwords of admin and demo, written by the first start
        self.credentials = tmp / "occi-credentials"


@pytest.fixture
def sqlite_server(tmp_path):
    srv = Server(f"sqlite:///{tmp_path}/occi.db", tmp_path)
    yield srv
    srv.stop()


@pytest.fixture
def signed_in_server(tmp_path):
    """With authentication on: the walkthroughs sign in as the first start's `demo`."""
    srv = Server(f"sqlite:///{tmp_path}/occi.db", tmp_path, auth="basic,token")
    yield srv
    srv.stop()


@pytest.fixture
def pg_server(tmp_path, pg_url):
    srv = Server(pg_url, tmp_path, auth="basic,token")
    yield srv
    srv.stop()


def run_walkthrough(name: str, server: Server, password: str | None = None) -> str:
    """Run an example script as a user would, as `demo` with the first start's password (or
    `password`)."""
    assert shutil.which("curl"), "curl is needed by the walkthroughs (make test installs it)"
    assert server.credentials.exists(), server.output()[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in ("OCCI_USER", "OCCI_PASSWORD")}
    env.update({"OCCI_URL": server.url, "OCCI_CREDENTIALS": str(server.credentials)})
    if password is not None:
        env["OCCI_PASSWORD"] = password
    p = subprocess.run(
        ["bash", str(ROOT / "examples" / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.mark.server
@pytest.mark.parametrize("script", ["walkthrough-text.sh", "walkthrough-json.sh"])
def test_walkthroughs_against_live_server(signed_in_server, script):
    out = run_walkthrough(script, signed_in_server)
    assert "passed" in out
    # they were signed in: the audit log has their writes as demo's, in project demo
    store = make_store(f"sqlite:///{signed_in_server.credentials.parent}/occi.db")
    try:
        mine = audit.events(store, user="demo", limit=1000)
        in_demo = audit.events(store, project="demo", limit=1000)
    finally:
        store.close()
    assert any(e.operation == "create compute" and e.status == 201 for e in mine)
    assert mine == in_demo and {e.project_name for e in mine} == {"demo"}
    with pytest.raises(AssertionError):  # and without the right password, nothing works
        run_walkthrough(script, signed_in_server, password="not-the-password")


@pytest.mark.server
@pytest.mark.postgres
def test_walkthroughs_on_postgresql(pg_server):
    for script in ("walkthrough-text.sh", "walkthrough-json.sh"):
        run_walkthrough(script, pg_server)


@pytest.mark.server
def test_http_protocol_details_over_real_http(sqlite_server):
    url = sqlite_server.url
    r = requests.get(url + "/-/")
    assert r.status_code == 200 and r.reason == "OK"
    assert "OCCI/1.2" in r.headers["Server"]
    assert r.headers["Content-Type"].startswith("text/plain")
    r = requests.post(
        url + "/compute/",
        headers={"Content-Type": JSON, "Accept": JSON},
        json={"kind": INFRA + "compute"},
    )
    assert (r.status_code, r.reason) == (201, "Created")
    loc = r.headers["Location"]
    assert loc.startswith(url + "/compute/")
    r = requests.get(loc, headers={"Accept": JSON})
    assert r.json()["attributes"]["occi.compute.state"] == "inactive"
    r = requests.put(url + "/compute/", headers={"Accept": JSON})
    assert (r.status_code, r.reason) == (405, "Method Not Allowed")
    r = requests.get(url + "/nothing/here", headers={"Accept": JSON})
    assert (r.status_code, r.reason) == (404, "Not Found")
    r = requests.post(url + "/compute/", data=b"x" * (2 << 20), headers={"Content-Type": JSON})
    assert r.status_code == 413
    r = requests.get(url + "/-/", headers={"Category": 'compute; scheme="unterminated'})
    assert r.status_code == 400
    # a chunked body (no Content-Length) is read whole
    chunks = iter(
        [b'{"kind": "http://schemas.ogf.org/occi/', b'infrastructure#compute", "title": "chunky"}']
    )
    r = requests.post(
        url + "/compute/", data=chunks, headers={"Content-Type": JSON, "Accept": JSON}
    )
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "chunky"
    r = requests.post(
        url + "/compute/",
        data=iter([b"x" * (1 << 20), b"y" * (1 << 20)]),
        headers={"Content-Type": JSON, "Accept": JSON},
    )
    assert r.status_code == 413
    # conventional header spelling, as the OCCI texts write it
    r = requests.get(loc, headers={"Accept": "text/occi"})
    raw_names = [k for k, _ in r.raw.headers.items()]
    assert "X-OCCI-Attribute" in raw_names and "Category" in raw_names


@pytest.mark.server
def test_workers_agree_on_state(sqlite_server):
    """Several gunicorn workers: an action seen by one is seen by all (state lives in SQL)."""
    url = sqlite_server.url
    h = {"Content-Type": JSON, "Accept": JSON}
    locs = []
    for _ in range(6):
        r = requests.post(url + "/compute/", headers=h, json={"kind": INFRA + "compute"})
        locs.append(r.headers["Location"])
    for loc in locs:
        r = requests.post(loc + "?action=start", headers=h, json={})
        assert r.status_code == 200, r.text
    for _ in range(3):
        for loc in locs:
            with requests.Session() as s:  # a new connection: possibly another worker
                assert s.get(loc, headers=h).json()["attributes"]["occi.compute.state"] == "active"


def test_cli_help_and_exit_codes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run(
        [sys.executable, "-m", "occi.cli", "--help"], capture_output=True, text=True, env=env
    )
    assert p.returncode == 0 and "--bind" in p.stdout and "OCCI_" in p.stdout
    p = subprocess.run(
        [sys.executable, "-m", "occi.cli", "--no-such-flag"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 2
    p = subprocess.run(
        [sys.executable, "-m", "occi.cli", "migrate"],
        capture_output=True,
        text=True,
        env={**env, "OCCI_WORKERS": "many"},
    )
    assert p.returncode == 1 and "workers" in p.stderr
    cfg = tmp_path / "occi.ini"
    cfg.write_text(f"[occi]\ndatabase_url = sqlite:///{tmp_path}/from-file.db\n")
    p = subprocess.run(
        [sys.executable, "-m", "occi.cli", "--config", str(cfg), "migrate"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "from-file.db").exists()

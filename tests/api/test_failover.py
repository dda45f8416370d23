"""Several servers on one PostgreSQL: a burst of creates, one server killed with SIGKILL while
its jobs are in flight; the survivor finishes everything. Directly and through HAProxy
(examples/haproxy.cfg)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from occi.store import make_store
from tests.live import ROOT, free_port

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
JSON = {"Content-Type": "application/occi+json", "Accept": "application/occi+json"}
CREATES = 200
DEAD_AFTER = 3.0
LEASE = 4.0


class Node:
    """One occi-server (gunicorn master + workers) in its own process group."""

    def __init__(self, database_url: str, tmp: Path, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "OCCI_DATABASE_URL": database_url,
                "OCCI_LOG_LEVEL": "WARNING",
                "OCCI_AUTH": "none",
                "OCCI_JOB_WAIT": "0",
                "OCCI_SIMULATOR_DELAY": "0.25",
                "OCCI_HEARTBEAT": "0.5",
                "OCCI_DEAD_AFTER": str(DEAD_AFTER),
                "OCCI_JOB_LEASE": str(LEASE),
                "OCCI_JOB_THREADS": "2",
            }
        )
        self.log = open(tmp / f"node-{port}.log", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "occi.cli", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            cwd=tmp,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError(self.output())

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-3000:]

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


class HAProxy:
    def __init__(self, tmp: Path, ports: list[int]):
        assert shutil.which("haproxy"), "haproxy is needed (make test installs it)"
        cfg = (ROOT / "examples" / "haproxy.cfg").read_text()
        self.port = free_port()
        cfg = cfg.replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{self.port}")
        cfg = cfg.replace("127.0.0.1:8081", f"127.0.0.1:{ports[0]}")
        cfg = cfg.replace("127.0.0.1:8082", f"127.0.0.1:{ports[1]}")
        path = tmp / "haproxy.cfg"
        path.write_text(cfg)
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = cfg.replace("global\n", "global\n    log stderr format raw local0\n", 1)
        cfg = cfg.replace("defaults\n", "defaults\n    log global\n    option httplog\n", 1)
        path.write_text(cfg)
        self.logfile = open(tmp / "haproxy.log", "w+")
        self.proc = subprocess.Popen(
            ["haproxy", "-db", "-f", str(path)], stdout=self.logfile, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError("haproxy did not come up")

    def failed_creates(self) -> list[tuple[str, str, str]]:
        """(server, status, termination state) of every POST /compute/ HAProxy did not answer
        with 201, from its log (option httplog)."""
        self.logfile.flush()
        out = []
        for line in (Path(self.logfile.name)).read_text().splitlines():
            # client [date] frontend backend/server timers status bytes - - state ... "request"
            fields = line.split()
            if '"POST' not in fields or len(fields) < 10 or fields[5] == "201":
                continue
            out.append((fields[3], fields[5], fields[9]))
        return out

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def create(url: str) -> str | int | None:
    try:
        r = requests.post(
            url + "/compute/", json={"kind": INFRA + "compute"}, headers=JSON, timeout=30
        )
    except requests.RequestException:
        return None  # the server died under this request
    return r.headers["Location"].rsplit("/", 1)[-1] if r.status_code == 201 else r.status_code


@pytest.mark.server
@pytest.mark.postgres
@pytest.mark.parametrize("through", ["direct", "haproxy"])
def test_failover_finishes_every_job_exactly_once(tmp_path, pg_url, through):
    store = make_store(pg_url)
    store.upgrade()
    a = Node(pg_url, tmp_path, free_port())
    b = Node(pg_url, tmp_path, free_port())
    lb = HAProxy(tmp_path, [a.port, b.port]) if through == "haproxy" else None
    try:
        # every worker of both servers has registered before the burst
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with store.engine.connect() as conn:
                alive = conn.execute(
                    sa.text("SELECT count(*) FROM servers WHERE status='alive'")
                ).scalar()
            if alive == 4:
                break
            time.sleep(0.1)
        assert alive == 4, f"{alive} of 4 workers registered"
        targets = [lb.url] if lb else [a.url, b.url]
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(create, targets[i % len(targets)]) for i in range(CREATES)]
            # kill A once jobs are queued and running on both servers
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with store.engine.connect() as conn:
                    running = conn.execute(
                        sa.text("SELECT count(DISTINCT owner) FROM jobs WHERE status='running'")
                    ).scalar()
                    queued = conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar()
                if running >= 2 and queued >= CREATES // 4:
                    break
                time.sleep(0.05)
            a.kill()
            created = [f.result() for f in futures]
        acknowledged = {c for c in created if isinstance(c, str)}
        if lb:
            # HAProxy redispatches what it could not deliver; the only requests lost are those
            # the killed server had taken in (it accepts connections until its last process
            # is gone, and HAProxy sends it new ones until its health check fails): each is
            # logged on that server as aborted by it (SH), never one on the survivor
            lost = [c for c in created if not isinstance(c, str)]
            failed = lb.failed_creates()
            # HAProxy logs a request when its session ends, which may be just after the
            # client had its answer: the last lines may still be on their way
            deadline = time.monotonic() + 10
            while len(failed) < len(lost) and time.monotonic() < deadline:
                time.sleep(0.1)
                failed = lb.failed_creates()
            assert len(failed) == len(lost), (failed, lost)
            assert all(
                server.endswith("/occi1") and status == "502" and state[:2] in ("SH", "SD")
                for server, status, state in failed
            ), failed
            assert len(lost) < CREATES // 4, len(lost)
        # within the lease threshold (plus the queue's own work) every job finishes
        deadline = time.monotonic() + DEAD_AFTER + LEASE + 60
        while time.monotonic() < deadline:
            with store.engine.connect() as conn:
                open_jobs = conn.execute(
                    sa.text("SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')")
                ).scalar()
            if open_jobs == 0:
                break
            time.sleep(0.25)
        with store.engine.connect() as conn:
            statuses = dict(
                conn.execute(sa.text("SELECT status, count(*) FROM jobs GROUP BY status")).all()
            )
            entities = conn.execute(
                sa.text("SELECT id, attributes FROM entities WHERE kind = :k"),
                {"k": INFRA + "compute"},
            ).all()
            machines = [r[0] for r in conn.execute(sa.text("SELECT name FROM sim_machines")).all()]
        assert statuses.get("pending", 0) == 0 and statuses.get("running", 0) == 0, statuses
        assert statuses.get("failed", 0) == 0, statuses
        ids = [e[0] for e in entities]
        assert acknowledged <= set(ids)  # nothing acknowledged was lost
        assert len(ids) == len(set(ids))
        assert sorted(machines) == sorted(f"occi-{i}" for i in ids)  # once in SQL, once on platform
        for _, attrs in entities:
            a_ = json.loads(attrs)
            assert a_["occi.compute.state"] == "inactive"
            assert a_["occi.compute.state.message"] != "creating"
        # both of A's worker processes are declared dead within the threshold. The queue may
        # drain before the second is: one whose jobs were all pending loses none to the reaper.
        deadline = time.monotonic() + DEAD_AFTER + LEASE
        while True:
            with store.engine.connect() as conn:
                dead = conn.execute(
                    sa.text("SELECT count(*) FROM servers WHERE status='dead'")
                ).scalar()
            if dead >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert dead == 2
        out = subprocess.run(
            [sys.executable, "-m", "occi.cli", "status"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "OCCI_DATABASE_URL": pg_url},
        )
        assert out.returncode == 0, out.stderr
        assert len(re.findall(r"\bdead\b", out.stdout)) == 2
        assert "running=" not in out.stdout and "pending=" not in out.stdout
    finally:
        if lb:
            lb.stop()
        a.stop()
        b.stop()
        store.close()

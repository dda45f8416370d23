"""A real `occi-server` (gunicorn) in a subprocess on a free port, for tests that need real HTTP.

One class for every such test: it starts the command as a user would, waits until it answers,
keeps its output in a file the test can read, and stops it. No pytest here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """`occi-server --bind 127.0.0.1:<port>` run in `tmp`, with only the OCCI_* variables given
    (`settings` as OCCI_<NAME>, `env` verbatim), SQLite in `tmp` unless `database_url` says
    otherwise, without authentication unless `auth=...` (or OCCI_AUTH in `env`) says which.
    `output()` is what it printed so far."""

    def __init__(
        self,
        tmp: Path,
        *,
        database_url: str | None = None,
        workers: int | None = None,
        threads: int | None = None,
        env: dict[str, str] | None = None,
        health: str = "/-/",
        **settings: object,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.health = health
        full = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
        full.update(
            {
                "OCCI_DATABASE_URL": database_url or f"sqlite:///{tmp}/occi.db",
                "OCCI_LOG_LEVEL": "WARNING",
                "OCCI_AUTH": "none",
                "PYTHONPATH": str(ROOT),
            }
        )
        full.update({"OCCI_" + k.upper(): str(v) for k, v in settings.items()})
        full.update(env or {})
        args = [sys.executable, "-m", "occi.cli", "--bind", f"127.0.0.1:{self.port}"]
        if workers is not None:
            args += ["--workers", str(workers)]
        if threads is not None:
            args += ["--threads", str(threads)]
        self.log_path = tmp / f"server-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            args, cwd=tmp, env=full, stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            self.wait_up()
        except BaseException:  # not up: nobody will stop it but us
            self.stop()
            raise

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()[-4000:]}")
            try:
                # up: it answers (with 401 when the path needs credentials it was not given)
                if requests.get(self.url + self.health, timeout=2).status_code in (200, 401):
                    return
            except (requests.ConnectionError, requests.Timeout):  # not up, or still building
                time.sleep(0.2)
        raise RuntimeError(f"server did not come up: {self.output()[-4000:]}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

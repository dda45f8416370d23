"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, start on a free port, stop
and remove it afterwards. Runs the server as the `postgres` user when we are root (initdb
refuses root). No pytest here, so end-to-end scripts can use it too."""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found in /usr/lib/postgresql/*/bin "
    "or on PATH. Run `make test`, which installs them (apt-get install postgresql), or install "
    "PostgreSQL 15 yourself."
)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says what to do."""


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl, newest version first."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for d in candidates:
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise PostgresUnavailable(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """One cluster. `start()` returns the URL of its `occi` database; `stop()` removes it."""

    def __init__(self, user: str = "occi", database: str = "occi"):
        self.user = user
        self.database = database
        self.bindir = find_bindir()
        self.as_root = os.geteuid() == 0
        self.dir: Path | None = None
        self.port: int | None = None
        self._running = False

    # -- processes ---------------------------------------------------------------------------

    def _run(self, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self.as_root:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", "postgres", "--", *cmd]
            else:
                import shlex

                cmd = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]
        proc = subprocess.run(
            cmd,
            cwd=str(self.dir),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        )
        if proc.returncode != 0:
            raise PostgresUnavailable(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def start(self) -> str:
        self.dir = Path(tempfile.mkdtemp(prefix="occi-pg-"))
        if self.as_root:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "there is no `postgres` user to run the server as: " + INSTALL_HINT
                ) from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        data = self.dir / "data"
        self._run(
            [
                self.bindir / "initdb",
                "-D",
                data,
                "-U",
                self.user,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        atexit.register(self.stop)
        last_error: Exception | None = None
        for _ in range(5):
            self.port = _free_port()
            opts = self._options()
            try:
                self._run(
                    [
                        self.bindir / "pg_ctl",
                        "-D",
                        data,
                        "-l",
                        self.dir / "server.log",
                        "-o",
                        opts,
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    timeout=90,
                )
                self._running = True
                break
            except PostgresUnavailable as exc:  # port taken between probe and start: retry
                last_error = exc
                time.sleep(0.2)
        else:
            log = (self.dir / "server.log").read_text(errors="replace")[-4000:]
            raise PostgresUnavailable(f"PostgreSQL did not start: {last_error}\n{log}")
        self.create_database(self.database)
        return self.url(self.database)

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )

    def pause(self) -> None:
        """Stop the server as a crash would (immediate), keeping its data and port.

        The clusters run with synchronous_commit=off for speed, so a commit may still sit in
        the WAL buffers when the client is told it is done; a crash would lose it, where a
        production server (synchronous_commit=on) would not. A checkpoint first writes out
        what was committed, so the pause loses only what a real crash could."""
        with self._admin() as conn:
            conn.execute("CHECKPOINT")
        self._run(
            [self.bindir / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "-w", "stop"]
        )
        self._running = False

    def resume(self) -> None:
        """Start a paused server again on the same port."""
        opts = self._options()
        data, logfile = self.dir / "data", self.dir / "server.log"
        self._run(
            [self.bindir / "pg_ctl", "-D", data, "-l", logfile, "-o", opts, "-w", "start"],
            timeout=90,
        )
        self._running = True

    def stop(self) -> None:
        if self.dir is None:
            return
        if self._running:
            try:
                self._run(
                    [
                        self.bindir / "pg_ctl",
                        "-D",
                        self.dir / "data",
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ]
                )
            except (PostgresUnavailable, subprocess.TimeoutExpired):
                pass
            self._running = False
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    # -- databases ---------------------------------------------------------------------------

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def _admin(self):  # psycopg.Connection in autocommit, on the maintenance database
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        )

    def create_database(self, name: str | None = None) -> str:
        """Create a database (a unique `test_...` one when no name is given); its URL."""
        name = name or f"test_{uuid.uuid4().hex}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

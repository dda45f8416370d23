"""`make bench`: load the real server under gunicorn with wrk, side by side with a baseline (a
bare falcon app under the same gunicorn settings answering the same bytes from memory, and
for create and action first writing the same rows with SQLAlchemy Core: bench/write_baseline.py),
on SQLite and (when installed) PostgreSQL, with 1,000 and 100,000 entities in the store. The
server's settings are read back and checked against the ones claimed (check_settings).

Prints a table and every target with its figure and PASS/FAIL, writes bench/results/latest.json
(and a dated copy) and latest.md. Exits non-zero only when the harness itself fails.

Environment knobs (defaults keep the whole run under 10 minutes on 2 cores):
  BENCH_DURATION=1     seconds per wrk slice        BENCH_ROUNDS=4     slices per targeted scenario
  BENCH_PG_ROUNDS=     (BENCH_ROUNDS) on PostgreSQL  BENCH_PG=auto|0|1  PostgreSQL leg
  BENCH_SCALE_ROUNDS=6 slices per size, side by side
  BENCH_SIZES=1000,100000                            BENCH_WORKERS=2    gunicorn workers
  BENCH_CONNECTIONS=16 BENCH_THREADS=2               BENCH_PROFILE=1    py-spy flame graphs
  BENCH_DBS=sqlite,postgresql                        BENCH_SCENARIOS=   all, or e.g. get_entity,page
  (scenario names: get_entity, query, collection, page, create, action; the page also in
  text/uri-list)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import pickle
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "request.lua"
PY = sys.executable

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
TEMPLATE = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"
OS_TPL = "http://occi.simulator.local/os_tpl#"
TYPES = {"plain": "text/plain", "json": "application/occi+json"}
#: every media type a scenario asks for: TYPES (all scenarios) and uri-list (the page only)
MIME = {**TYPES, "uri": "text/uri-list"}
SCENARIO_HEADER = "X-Bench-Scenario"

# targets (the numbers)
GET_ONE_MIN = 0.40
QUERY_MIN = 0.60
SCALE_MAX = 1.20
JSON_DUMPS_MAX = 3.0
STREAM_RSS_MAX_MB = 50.0
#: issue 11: POST create and POST action against the write baseline (bench/write_baseline.py)
CREATE_MIN = 0.5
ACTION_MIN = 0.5
#: issue 11: GET a page of 100 against the (read) baseline, by media type
PAGE_MIN = {"plain": 0.5, "uri": 0.5, "json": 0.25}
#: issue 11: statements per create and per action, the request and its jobs together
CREATE_STATEMENTS_MAX = 12
ACTION_STATEMENTS_MAX = 10
#: issue 11: GET the whole collection of 10,000 storages (the 100,000 store) in JSON at least
#: this many times the rate before it
COLLECTION_JSON_SPEEDUP = 3.0
#: req/s of that scenario before issue 11, from the README's table of the run 20261201T060703Z
#: (sqlite 100,000 "GET /storage/ whole (10,000)" json: 4; postgresql: 2)
COLLECTION_JSON_BEFORE = {"sqlite": 4.0, "postgresql": 2.0}
#: the settings the bench claims the server runs with: the defaults, except these
#: (bench_store passes them as OCCI_* variables; check_settings compares the workers' own)
CLAIMED: dict[str, str] = {}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def log(msg: str) -> None:
    print(msg, flush=True)


# ============================================================================= processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A gunicorn master we started (the OCCI server or the baseline) and its workers."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        logdir: Path,
        probe: str,
        probe_headers: dict[str, str] | None = None,
    ):
        self.name = name
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.logfile = open(logdir / f"{name}-{self.port}.log", "w+b")
        self.proc = subprocess.Popen(
            [*argv, "--bind", self.address],
            cwd=logdir,
            env=env,
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited at start:\n{self.output()}")
            try:
                status, _, _ = http_request(self.address, "GET", probe, probe_headers or {})
                if status < 500:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not come up:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        self.logfile.flush()
        self.logfile.seek(0)
        return self.logfile.read()[-3000:].decode(errors="replace")

    def pids(self) -> list[int]:
        out = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            out += [int(p) for p in children.split()]
        except OSError:
            pass
        return out

    def worker_cpu(self) -> dict[int, int]:
        """CPU clock ticks (user + system) used so far by each worker process."""
        out = {}
        for pid in self.pids()[1:]:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                out[pid] = int(fields[11]) + int(fields[12])
            except (OSError, ValueError, IndexError):
                pass
        return out

    def memory(self, field_name: str = "VmRSS") -> dict[int, int]:
        """kB of VmRSS (or VmHWM) per process: master and workers."""
        out = {}
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(field_name + ":"):
                        out[pid] = int(line.split()[1])
            except OSError:
                pass
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.logfile.close()


class RssSampler:
    """Peak of the summed VmRSS of a server's processes while a load runs."""

    def __init__(self, served: Served, every: float = 0.05):
        self.served = served
        self.every = every
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, sum(self.served.memory().values()))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def http_request(
    address: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None = None,
    timeout: float = 120,
):
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, r, data
    finally:
        conn.close()


# ============================================================================= scenarios
@dataclass
class Scenario:
    name: str  # e.g. get_entity
    label: str  # what the table shows
    mtype: str  # plain | json
    method: str
    paths: list[str]
    body: bytes | None = None
    content_type: str | None = None
    connections: int | None = None  # None: the default
    slow: bool = False  # seconds per request: slices twice as long
    #: a target rests on its ratio: measured every round (the others, figures only, once)
    targeted: bool = True
    #: the API token every request of the OCCI server carries (the baseline ignores it)
    token: str | None = None

    @property
    def key(self) -> str:
        return f"{self.name}/{self.mtype}"

    def headers(self) -> dict[str, str]:
        h = {"Accept": MIME[self.mtype], SCENARIO_HEADER: self.key}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if self.content_type:
            h["Content-Type"] = self.content_type
        return h


def scenarios(ds: dict[str, Any]) -> list[Scenario]:
    out = []
    for mt in TYPES:
        if mt == "plain":
            create_body = (
                f'Category: compute; scheme="{INFRA}"; class="kind"\n'
                f'Category: small; scheme="{TEMPLATE}"; class="mixin"\n'
                f'Category: debian12; scheme="{OS_TPL}"; class="mixin"\n'
                'X-OCCI-Attribute: occi.core.title="bench", occi.compute.hostname="bench"\n'
            ).encode()
            action_body = f'Category: restart; scheme="{ACTION}"; class="action"\n'.encode()
        else:
            create_body = json.dumps(
                {
                    "kind": INFRA + "compute",
                    "mixins": [TEMPLATE + "small", OS_TPL + "debian12"],
                    "attributes": {"occi.core.title": "bench", "occi.compute.hostname": "bench"},
                }
            ).encode()
            action_body = json.dumps({"action": ACTION + "restart"}).encode()
        ct = TYPES[mt]
        out += [
            Scenario("get_entity", "GET one compute", mt, "GET", [ds["target_compute"]]),
            Scenario("query", "GET /-/", mt, "GET", ["/-/"]),
            Scenario(
                "collection",
                f"GET /storage/ whole ({ds['storages']:,})",
                mt,
                "GET",
                ["/storage/"],
                connections=4,
                slow=True,
                targeted=False,
            ),
            Scenario(
                "page", "GET /compute/ page of 100", mt, "GET", ["/compute/?page=1&number=100"]
            ),
            Scenario("create", "POST create compute", mt, "POST", ["/compute/"], create_body, ct),
            Scenario(
                "action",
                "POST ?action=restart",
                mt,
                "POST",
                [p + "?action=restart" for p in ds["active_computes"]],
                action_body,
                ct,
            ),
        ]
    out.append(
        Scenario("page", "GET /compute/ page of 100", "uri", "GET", ["/compute/?page=1&number=100"])
    )
    for sc in out:
        sc.token = ds.get("token")
    return out


def bench_token(url: str, workdir: Path) -> str:
    """An API token for the bench's requests, made as an administrator would: a user with the
    member role on the project `default` (which holds what bench.populate stored)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
    env.update(OCCI_DATABASE_URL=url, OCCI_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))

    def cli(*args: str) -> str:
        p = subprocess.run(
            [PY, "-m", "occi.cli", *args], cwd=workdir, env=env, capture_output=True, text=True
        )
        if p.returncode != 0:
            raise RuntimeError(f"occi-server {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    cli("users", "create", "bench")
    cli("roles", "grant", "bench", "default", "member")
    return cli("tokens", "create", "bench", "--name", "make bench").strip()


# ============================================================================= measuring
@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    peak_rss_mb: float = 0.0
    #: slices thrown away because gunicorn gave every connection to one worker
    lopsided: int = 0


#: a slice in which one worker did less than this share of the busiest one's work is lopsided
LOPSIDED = 0.25
#: attempts at a slice before a lopsided one is kept anyway
SLICE_ATTEMPTS = 3


def balanced_wrk(
    served: Served, sc: Scenario, duration: float, threads: int, connections: int, workdir: Path
) -> Run:
    """wrk against one gunicorn, repeated when the slice was lopsided. wrk opens all its
    keep-alive connections at once; the worker that wakes first often accepts every one of
    them and the other workers idle for the whole slice. That is gunicorn's accept race (it
    hits the baseline too), not the application's speed, so such a slice is measured again,
    for server and baseline alike, and the number thrown away is reported."""
    lopsided = 0
    while True:
        before = served.worker_cpu()
        run = wrk(served.address, sc, duration, threads, connections, workdir)
        after = served.worker_cpu()
        used = [after[p] - before[p] for p in after if p in before]
        if len(used) < 2 or max(used) == 0 or min(used) >= LOPSIDED * max(used):
            break
        lopsided += 1
        if lopsided >= SLICE_ATTEMPTS:
            break
    run.lopsided = lopsided
    return run


def plain_wrk(
    served: Served, sc: Scenario, duration: float, threads: int, connections: int, workdir: Path
) -> Run:
    return wrk(served.address, sc, duration, threads, connections, workdir)


def wrk(
    address: str, sc: Scenario, duration: float, threads: int, connections: int, workdir: Path
) -> Run:
    env = dict(os.environ)
    body_file = ""
    if sc.body is not None:
        body_path = workdir / f"body-{sc.name}-{sc.mtype}"
        body_path.write_bytes(sc.body)
        body_file = str(body_path)
    conns = sc.connections or connections
    env.update(
        BENCH_METHOD=sc.method,
        BENCH_PATH=sc.paths[0],
        BENCH_BODY_FILE=body_file,
        BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in sc.headers().items()),
    )
    runs = []
    # several paths (the action scenario): one wrk per path group, run together
    groups = sc.paths if len(sc.paths) > 1 else [sc.paths[0]]
    per = max(1, conns // len(groups))
    procs = []
    for p in groups:
        e = dict(env, BENCH_PATH=p)
        procs.append(
            subprocess.Popen(
                [
                    "wrk",
                    "-t1" if len(groups) > 1 else f"-t{min(threads, conns)}",
                    f"-c{per if len(groups) > 1 else conns}",
                    f"-d{duration}s",
                    "--timeout",
                    "60s",
                    "-s",
                    str(LUA),
                    f"http://{address}",
                ],
                env=e,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        out, err = proc.communicate(timeout=duration + 120)
        line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_RESULT ")), None)
        if proc.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {out}\n{err}")
        runs.append(json.loads(line.split(" ", 1)[1]))
    requests = sum(r["requests"] for r in runs)
    secs = max(r["duration_us"] for r in runs) / 1e6
    errors = sum(r[k] for r in runs for k in r if k.startswith("err_") and k != "err_connect")
    p50 = statistics.median(r["p50_us"] for r in runs) / 1000
    p99 = max(r["p99_us"] for r in runs) / 1000
    return Run(requests / secs if secs else 0.0, p50, p99, requests, errors)


def count_statements(database_url: str, scs: list[Scenario]) -> dict[str, int]:
    """SQL statements one request of each scenario executes, in-process (every engine), the
    jobs it queues included: without job threads (run_jobs=False) the request runs its jobs
    itself, simulator work and all, before it answers, as it does under the server's default
    job_wait."""
    import sqlalchemy as sa
    from falcon import testing

    from occi.api.wsgi import build
    from occi.settings import Settings

    counter = {"n": 0}

    def on_execute(*_: object) -> None:
        counter["n"] += 1

    # without the PostgreSQL read cache: the statements a request costs when it reaches the
    # database (a GET of one entity served from the cache costs none)
    settings = Settings.from_mapping(
        {"database_url": database_url, "log_level": "WARNING", "entity_cache": "0"}
    )
    app, service = build(settings, run_jobs=False)
    client = testing.TestClient(app)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", on_execute)
    out = {}
    try:
        for sc in scs:
            counts = []
            for _ in range(4):  # the first ones may fill per-process caches (registry, and on
                # PostgreSQL the categories listener connecting in the background)
                counter["n"] = 0
                r = client.simulate_request(
                    sc.method,
                    sc.paths[0].split("?")[0],
                    query_string=sc.paths[0].partition("?")[2],
                    headers=sc.headers(),
                    body=sc.body,
                )
                if r.status_code >= 400:
                    raise RuntimeError(f"{sc.key} in-process: {r.status} {r.text[:300]}")
                counts.append(counter["n"])
            out[sc.key] = min(counts[1:])
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", on_execute)
        service.store.close()
        service.backend.close()
    return out


def record(
    server: Served, scs: list[Scenario], path: Path
) -> dict[str, tuple[str, list[tuple[str, str]], bytes]]:
    """The server's answers, as the baseline will replay them (status, headers, body)."""
    responses: dict[str, tuple[str, list[tuple[str, str]], bytes]] = {}
    skip = {"date", "server", "content-length", "connection", "transfer-encoding"}
    for sc in scs:
        status, r, body = http_request(
            server.address, sc.method, sc.paths[0], sc.headers(), sc.body
        )
        if status >= 400:
            raise RuntimeError(f"{sc.key}: the server answered {status}: {body[:300]!r}")
        headers = [(k, v) for k, v in r.getheaders() if k.lower() not in skip]
        responses[sc.key] = (f"{status} {r.reason}", headers, body)
    path.write_bytes(pickle.dumps(responses))
    return responses


def write_templates(
    url: str,
    scs: list[Scenario],
    responses: dict[str, tuple[str, list[tuple[str, str]], bytes]],
    path: Path,
    active_compute: str,
) -> Path | None:
    """The rows the server stored for the create and the action `record` made, for the write
    baseline to copy (bench/write_baseline.py); None when neither scenario runs."""
    from bench.write_baseline import record_templates

    made = None
    acted = None
    for sc in scs:
        if sc.name == "create" and made is None:
            headers = dict((k.lower(), v) for k, v in responses[sc.key][1])
            made = "/" + headers["location"].split("://", 1)[-1].split("/", 1)[1]
        if sc.name == "action" and acted is None:
            acted = sc.paths[0].split("?")[0]
    if made is None and acted is None:
        return None
    if acted is None:  # no action scenario: its template is never used
        acted = active_compute
    path.write_text(json.dumps(record_templates(url, made, acted)))
    return path


#: settings shown in the results header (the rest are compared too)
SHOWN_SETTINGS = (
    "workers",
    "threads",
    "backend",
    "auth",
    "job_wait",
    "job_threads",
    "job_lease",
    "heartbeat",
    "reconcile_interval",
    "entity_cache",
    "log_level",
)


def check_settings(server: Served, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """The settings the server's workers run with, next to what the bench claims (the defaults,
    the OCCI_* variables it passes, CLAIMED). A worker builds its settings with Settings.load()
    from the environment `occi-server` sets from its own (occi.cli._serve: to_env()); that
    path is followed here with the server's own argv and environment, and the workers the
    server really runs (processes) and its job threads (its log) are read from the live server.
    A difference is a harness error: the figures would not be those of the claimed settings."""
    from occi.cli import _overrides, _parser
    from occi.settings import Settings

    args = _parser().parse_args(argv)
    parsed = Settings.load(environ=env, overrides=_overrides(args))
    worker = Settings.load(environ=parsed.to_env())
    claimed = Settings.load(
        environ={k: v for k, v in env.items() if k in ("OCCI_DATABASE_URL", *CLAIMED)},
        overrides={"workers": int(argv[argv.index("--workers") + 1]), "bind": server.address},
    )
    diffs = [
        f"{name}: claimed {getattr(claimed, name)!r}, runs {getattr(worker, name)!r}"
        for name in (f for f in vars(claimed) if f != "extra")
        if getattr(claimed, name) != getattr(worker, name)
    ]
    live_workers = len(server.pids()) - 1
    if live_workers != worker.workers:
        diffs.append(f"workers: {worker.workers} configured, {live_workers} processes run")
    server.logfile.flush()
    log_text = Path(server.logfile.name).read_text(errors="replace")
    job_threads = {
        int(line.split("runs jobs with ")[1].split()[0])
        for line in log_text.splitlines()
        if "runs jobs with " in line
    }
    if job_threads and job_threads != {worker.job_threads}:
        diffs.append(f"job_threads: {worker.job_threads} configured, log says {job_threads}")
    if diffs:
        raise RuntimeError("the server does not run with the settings claimed: " + "; ".join(diffs))
    return {name: getattr(worker, name) for name in SHOWN_SETTINGS}


def warm(served: Served, scs: list[Scenario]) -> None:
    for _ in range(3):
        for sc in scs:
            if sc.method == "GET":
                http_request(served.address, sc.method, sc.paths[0], sc.headers())


def stream_rss(server: Served, path: str, token: str) -> dict[str, float]:
    """Growth of each worker's peak RSS over its RSS before GETting the whole collection."""
    headers = {"Accept": TYPES["json"], "Authorization": "Bearer " + token}
    for _ in range(4):
        http_request(server.address, "GET", "/-/", headers)
    before = server.memory("VmRSS")
    t0 = time.monotonic()
    threads = [
        threading.Thread(target=http_request, args=(server.address, "GET", path, headers))
        for _ in range(2)
    ]
    for _ in range(2):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        threads = [
            threading.Thread(target=http_request, args=(server.address, "GET", path, headers))
            for _ in range(2)
        ]
    secs = (time.monotonic() - t0) / 4
    after = server.memory("VmHWM")
    growth = [after[p] - before[p] for p in before if p in after and p != server.proc.pid]
    return {
        "growth_mb": max(growth) / 1024 if growth else 0.0,
        "rss_before_mb": sum(before.values()) / 1024,
        "hwm_after_mb": sum(after.values()) / 1024,
        "seconds_per_request": secs,
    }


def profile(
    served: Served, sc: Scenario, duration: float, threads: int, connections: int, workdir: Path
) -> str | None:
    pyspy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    if not Path(pyspy).exists():
        log("  (py-spy missing: no profile; `make bench PROFILE=1` installs it)")
        return None
    out = RESULTS / "profiles" / f"{workdir.name}-{sc.name}-{sc.mtype}.svg"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [
            pyspy,
            "record",
            "--pid",
            str(served.proc.pid),
            "--subprocesses",
            "--nonblocking",
            "--rate",
            "200",
            "--duration",
            str(int(duration) + 2),
            "--format",
            "flamegraph",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    wrk(served.address, sc, duration, threads, connections, workdir)
    _, err = spy.communicate(timeout=duration + 60)
    if spy.returncode != 0 or not out.exists():
        log(f"  py-spy failed for {sc.key}: {err.strip()[-300:]}")
        return None
    return str(out.relative_to(ROOT))


# ============================================================================= one store
@dataclass
class Cell:
    db: str
    size: int
    scenario: str
    label: str
    mtype: str
    server: list[Run] = field(default_factory=list)
    baseline: list[Run] = field(default_factory=list)
    statements: int | None = None
    profile: str | None = None

    def summary(self) -> dict[str, Any]:
        ratios = [s.rps / b.rps for s, b in zip(self.server, self.baseline, strict=True) if b.rps]
        return {
            "db": self.db,
            "size": self.size,
            "scenario": self.scenario,
            "label": self.label,
            "type": self.mtype,
            "rps": statistics.median(r.rps for r in self.server),
            "p50_ms": statistics.median(r.p50_ms for r in self.server),
            "p99_ms": statistics.median(r.p99_ms for r in self.server),
            "baseline_rps": statistics.median(r.rps for r in self.baseline),
            "baseline_p50_ms": statistics.median(r.p50_ms for r in self.baseline),
            "ratio": statistics.median(ratios) if ratios else 0.0,
            "peak_rss_mb": max(r.peak_rss_mb for r in self.server),
            "statements": self.statements,
            "errors": sum(r.errors for r in self.server),
            "lopsided_redone": sum(r.lopsided for r in self.server + self.baseline),
            "requests": sum(r.requests for r in self.server),
            "rounds": len(self.server),
            "profile": self.profile,
        }


def bench_store(
    db: str, url: str, size: int, cfg: dict[str, Any], workdir: Path, extra: dict[str, Any]
) -> list[Cell]:
    from bench.populate import populate

    log(f"\n== {db}, {size:,} entities: populating ...")
    ds = populate(url, size, storages=size // 10).as_dict()
    ds["token"] = bench_token(url, workdir)
    extra["ds"] = ds
    log(
        f"   {ds['total']:,} entities ({ds['computes']:,} computes, {ds['storages']:,} storages) "
        f"in {ds['seconds']:.1f} s"
    )
    scs = [sc for sc in scenarios(ds) if not cfg["scenarios"] or sc.name in cfg["scenarios"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
    env.update(OCCI_DATABASE_URL=url, PYTHONPATH=str(ROOT), **CLAIMED)
    workers = str(cfg["workers"])
    # before the server starts: its job threads would otherwise run (and hide) our jobs
    statements = count_statements(url, scs)
    server_argv = [PY, "-m", "occi.cli", "--workers", workers]
    server = Served("server", server_argv, env, workdir, "/-/")
    baseline = None
    try:
        if ds["storages"] >= 10_000:
            extra["stream"] = stream_rss(server, "/storage/", ds["token"])
            extra["stream"].update(db=db, size=size, collection=ds["storages"])
            log(
                f"   streamed JSON collection of {ds['storages']:,}: worker peak RSS +"
                f"{extra['stream']['growth_mb']:.1f} MB, "
                f"{extra['stream']['seconds_per_request']:.2f} s per request"
            )
        responses = workdir / f"responses-{db}-{size}.pickle"
        recorded = record(server, scs, responses)
        extra["settings"] = check_settings(
            server, [*server_argv[3:], "--bind", server.address], env
        )
        log(
            "   the server runs with: "
            + ", ".join(f"{k}={v}" for k, v in extra["settings"].items())
        )
        templates = write_templates(
            url, scs, recorded, workdir / f"writes-{db}-{size}.json", ds["active_computes"][0]
        )
        baseline = Served(
            "baseline",
            [PY, "-m", "bench.baseline", "--workers", workers, "--responses", str(responses)]
            + (["--writes", str(templates)] if templates else []),
            env,
            workdir,
            "/-/",
            {SCENARIO_HEADER: "query/plain"},
        )
        warm(server, scs)
        warm(baseline, scs)
        cells = [
            Cell(db, size, sc.name, sc.label, sc.mtype, statements=statements[sc.key]) for sc in scs
        ]
        rounds = cfg["pg_rounds"] if db == "postgresql" else cfg["rounds"]
        d, t, c = cfg["duration"], cfg["threads"], cfg["connections"]
        for rnd in range(rounds):
            for sc, cell in zip(scs, cells, strict=True):
                if rnd and not sc.targeted:
                    continue
                order = [server, baseline] if rnd % 2 == 0 else [baseline, server]
                secs = d * 2 if sc.slow else d
                measure = balanced_wrk if sc.targeted else plain_wrk
                for served in order:
                    if served is server:
                        with RssSampler(server) as rss:
                            run = measure(server, sc, secs, t, c, workdir)
                        run.peak_rss_mb = rss.peak_kb / 1024
                        cell.server.append(run)
                    else:
                        cell.baseline.append(measure(baseline, sc, secs, t, c, workdir))
                s, b = cell.server[-1], cell.baseline[-1]
                log(
                    f"   r{rnd + 1} {sc.key:18} server {s.rps:8.1f}/s  baseline {b.rps:8.1f}/s"
                    f"  {s.rps / b.rps if b.rps else 0:6.1%}"
                    + (f"  ERRORS {s.errors}" if s.errors else "")
                    + (
                        f"  (lopsided slices redone: server {s.lopsided}, baseline {b.lopsided})"
                        if s.lopsided or b.lopsided
                        else ""
                    )
                )
        if cfg["profile"]:
            for sc, cell in zip(scs, cells, strict=True):
                cell.profile = profile(server, sc, max(d, 3), t, c, workdir)
        return cells
    finally:
        server.stop()
        if baseline is not None:
            baseline.stop()


# ============================================================================= scale, side by side
def scale_compare(
    db: str, stores: dict[int, tuple[str, dict[str, Any]]], cfg: dict[str, Any], workdir: Path
) -> list[dict[str, Any]]:
    """GET one entity and GET one page against the smallest and the largest store at once:
    two servers up together, loaded in alternating slices like server and baseline, so the
    machine's noise falls on both. Figure: the median over slices of small rps / large rps,
    the time a request takes at the large size relative to the small one."""
    small, big = min(stores), max(stores)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
    env["PYTHONPATH"] = str(ROOT)
    workers = str(cfg["workers"])
    served: dict[int, Served] = {}
    out = []
    try:
        for size in (small, big):
            url, _ = stores[size]
            served[size] = Served(
                f"scale-{size}",
                [PY, "-m", "occi.cli", "--workers", workers],
                dict(env, OCCI_DATABASE_URL=url),
                workdir,
                "/-/",
            )
        pairs = []
        for name in ("get_entity", "page"):
            for mt in TYPES:
                by_size = {
                    size: next(
                        sc
                        for sc in scenarios(stores[size][1])
                        if sc.name == name and sc.mtype == mt
                    )
                    for size in (small, big)
                }
                pairs.append((name, mt, by_size))
        for size in (small, big):
            warm(served[size], [p[2][size] for p in pairs])
        runs: dict[tuple[str, str], dict[int, list[Run]]] = {
            (n, m): {small: [], big: []} for n, m, _ in pairs
        }
        d, t, c = cfg["duration"], cfg["threads"], cfg["connections"]
        for rnd in range(cfg["scale_rounds"]):
            for name, mt, by_size in pairs:
                for size in (small, big) if rnd % 2 == 0 else (big, small):
                    runs[(name, mt)][size].append(
                        balanced_wrk(served[size], by_size[size], d, t, c, workdir)
                    )
                a, b = runs[(name, mt)][small][-1], runs[(name, mt)][big][-1]
                log(
                    f"   r{rnd + 1} {name + '/' + mt:18} {small:>7,} {a.rps:8.1f}/s  {big:>7,} "
                    f"{b.rps:8.1f}/s  {a.rps / b.rps if b.rps else 0:5.2f}x"
                )
        for (name, mt), r in runs.items():
            slower = [a.rps / b.rps for a, b in zip(r[small], r[big], strict=True) if b.rps]
            out.append(
                {
                    "db": db,
                    "scenario": name,
                    "type": mt,
                    "small": small,
                    "big": big,
                    "slower": statistics.median(slower) if slower else float("inf"),
                    "p50_small_ms": statistics.median(x.p50_ms for x in r[small]),
                    "p50_big_ms": statistics.median(x.p50_ms for x in r[big]),
                }
            )
    finally:
        for s in served.values():
            s.stop()
    return out


# ============================================================================= in-process JSON
def json_vs_dumps(url: str, repeats: int = 5) -> dict[str, Any]:
    """The whole storage collection rendered by JsonRendering vs json.dumps of the same data
    as plain dicts (what the rendering emits, parsed back)."""
    from occi.api.wsgi import build
    from occi.context import RequestContext
    from occi.service import Filter, Page
    from occi.settings import Settings
    from rendering.base import Context
    from rendering.json_rendering import JsonRendering

    settings = Settings.from_mapping({"database_url": url, "log_level": "WARNING"})
    _, service = build(settings, run_jobs=False)
    try:
        ctx = Context("http://127.0.0.1:8080")
        t0 = time.perf_counter()
        it, _ = service.list_collection(RequestContext.system(), "/storage/", Filter(), Page())
        loaded = list(it)
        load_s = time.perf_counter() - t0
        r = JsonRendering()
        render_times, dumps_times = [], []
        body = b""
        for _ in range(repeats):
            t0 = time.perf_counter()
            body = b"".join(r.render_entities(loaded, ctx).body)
            render_times.append(time.perf_counter() - t0)
        plain = json.loads(body)
        for _ in range(repeats):
            t0 = time.perf_counter()
            json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode()
            dumps_times.append(time.perf_counter() - t0)
        render_s, dumps_s = statistics.median(render_times), statistics.median(dumps_times)
        return {
            "entities": len(loaded),
            "bytes": len(body),
            "load_s": load_s,
            "render_s": render_s,
            "dumps_s": dumps_s,
            "ratio": render_s / dumps_s,
        }
    finally:
        service.store.close()
        service.backend.close()


# ============================================================================= report
def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    import sqlite3

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version.strip(),
    }


def mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def targets(rows: list[dict[str, Any]], extra: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    by = {(r["db"], r["size"], r["scenario"], r["type"]): r for r in rows}
    for r in rows:
        if r["scenario"] == "get_entity":
            out.append(
                {
                    "target": f"GET one entity >= {GET_ONE_MIN:.0%} of baseline",
                    "where": f"{r['db']} {r['size']:,} {r['type']}",
                    "figure": f"{r['ratio']:.1%}",
                    "ok": r["ratio"] >= GET_ONE_MIN,
                }
            )
    for r in rows:
        if r["scenario"] == "query":
            out.append(
                {
                    "target": f"GET query interface >= {QUERY_MIN:.0%} of baseline",
                    "where": f"{r['db']} {r['size']:,} {r['type']}",
                    "figure": f"{r['ratio']:.1%}",
                    "ok": r["ratio"] >= QUERY_MIN,
                }
            )
    for r in rows:
        where = f"{r['db']} {r['size']:,} {r['type']}"
        if r["scenario"] in ("create", "action"):
            least = CREATE_MIN if r["scenario"] == "create" else ACTION_MIN
            what = "POST create" if r["scenario"] == "create" else "POST action (restart)"
            out.append(
                {
                    "target": f"{what} >= {least:.0%} of the write baseline",
                    "where": where,
                    "figure": f"{r['ratio']:.1%} ({r['rps']:.0f} vs {r['baseline_rps']:.0f}/s)",
                    "ok": r["ratio"] >= least,
                }
            )
            most = CREATE_STATEMENTS_MAX if r["scenario"] == "create" else ACTION_STATEMENTS_MAX
            if r["statements"] is not None:
                out.append(
                    {
                        "target": f"{what}: <= {most} SQL statements, request and jobs together",
                        "where": where,
                        "figure": str(r["statements"]),
                        "ok": r["statements"] <= most,
                    }
                )
        elif r["scenario"] == "page":
            least = PAGE_MIN[r["type"]]
            out.append(
                {
                    "target": f"GET a page of 100 ({MIME[r['type']]}) >= {least:.0%} of baseline",
                    "where": where,
                    "figure": f"{r['ratio']:.1%}",
                    "ok": r["ratio"] >= least,
                }
            )
        elif (
            r["scenario"] == "collection"
            and r["type"] == "json"
            and r["size"] == 100_000
            and r["db"] in COLLECTION_JSON_BEFORE
        ):
            before = COLLECTION_JSON_BEFORE[r["db"]]
            out.append(
                {
                    "target": f"GET the whole collection (JSON) >= {COLLECTION_JSON_SPEEDUP:.0f}x "
                    "the rate before issue 11",
                    "where": where,
                    "figure": f"{r['rps'] / before:.1f}x ({r['rps']:.1f} vs {before:.0f} req/s)",
                    "ok": r["rps"] >= COLLECTION_JSON_SPEEDUP * before,
                }
            )
    dbs = sorted({r["db"] for r in rows})
    sizes = sorted({r["size"] for r in rows})
    for sc in extra.get("scale", []):
        what = "GET one entity" if sc["scenario"] == "get_entity" else "GET one page"
        out.append(
            {
                "target": f"{what} at {sc['big']:,} takes <= {SCALE_MAX:.2f}x the time at "
                f"{sc['small']:,} (side by side)",
                "where": f"{sc['db']} {sc['type']}",
                "figure": f"{sc['slower']:.2f}x (p50 {sc['p50_small_ms']:.1f} -> "
                f"{sc['p50_big_ms']:.1f} ms)",
                "ok": sc["slower"] <= SCALE_MAX,
            }
        )
    if "json" in extra:
        j = extra["json"]
        out.append(
            {
                "target": f"whole collection JSON render <= {JSON_DUMPS_MAX:.0f}x json.dumps",
                "where": f"{j['entities']:,} entities in-process",
                "figure": f"{j['ratio']:.2f}x ({j['render_s'] * 1000:.0f} ms vs "
                f"{j['dumps_s'] * 1000:.0f} ms)",
                "ok": j["ratio"] <= JSON_DUMPS_MAX,
            }
        )
    for s in extra.get("streams", []):
        out.append(
            {
                "target": f"whole collection streamed: peak RSS grows < {STREAM_RSS_MAX_MB:.0f} MB",
                "where": f"{s['db']} {s['collection']:,} of {s['size']:,} json",
                "figure": f"+{s['growth_mb']:.1f} MB",
                "ok": s["growth_mb"] < STREAM_RSS_MAX_MB,
            }
        )
    for db in dbs:
        diffs = []
        for sc in sorted({r["scenario"] for r in rows}):
            for mt in MIME:
                counts = {
                    size: by[(db, size, sc, mt)]["statements"]
                    for size in sizes
                    if (db, size, sc, mt) in by
                }
                if len(set(counts.values())) > 1:
                    diffs.append(f"{sc}/{mt} {counts}")
        out.append(
            {
                "target": "SQL statements per request independent of the store size",
                "where": db,
                "figure": "; ".join(diffs) or "equal for every scenario",
                "ok": not diffs,
            }
        )
    return out


def table(rows: list[dict[str, Any]]) -> list[str]:
    head = (
        "| db | store | scenario | type | req/s | baseline req/s | ratio | p50 ms | p99 ms "
        "| baseline p50 ms | peak RSS MB | SQL/req (+ jobs) | errors |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        lines.append(
            f"| {r['db']} | {r['size']:,} | {r['label']} | {r['type']} | {r['rps']:.0f} | "
            f"{r['baseline_rps']:.0f} | {r['ratio']:.0%} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['baseline_p50_ms']:.1f} | {r['peak_rss_mb']:.0f} | {r['statements']} | "
            f"{r['errors']} |"
        )
    return lines


def main() -> int:
    t_start = time.monotonic()
    if not shutil.which("wrk"):
        log("bench: wrk is not installed (apt-get install wrk; `make bench` does it as root)")
        return 2
    cfg = {
        "duration": env_int("BENCH_DURATION", 1),
        "rounds": env_int("BENCH_ROUNDS", 4),
        "pg_rounds": env_int("BENCH_PG_ROUNDS", env_int("BENCH_ROUNDS", 4)),
        "scale_rounds": env_int("BENCH_SCALE_ROUNDS", 6),
        "workers": env_int("BENCH_WORKERS", 2),
        "threads": env_int("BENCH_THREADS", 2),
        "connections": env_int("BENCH_CONNECTIONS", 16),
        "profile": os.environ.get("BENCH_PROFILE", "0") not in ("", "0"),
        "sizes": [int(s) for s in os.environ.get("BENCH_SIZES", "1000,100000").split(",")],
        "dbs": [d for d in os.environ.get("BENCH_DBS", "sqlite,postgresql").split(",") if d],
        "scenarios": [s for s in os.environ.get("BENCH_SCENARIOS", "").split(",") if s],
    }
    want_pg = os.environ.get("BENCH_PG", "auto")
    info = machine()
    log(
        f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['memory_gb']} GB, "
        f"Python {info['python']}, SQLite {info['sqlite']}, {info['wrk']}"
    )
    log(f"settings: {cfg}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="occi-bench-"))
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"streams": []}
    cluster = None
    harness_errors: list[str] = []
    #: per database, the settings the server ran with (check_settings)
    server_settings: dict[str, dict[str, Any]] = {}
    try:
        dbs: list[str] = ["sqlite"] if "sqlite" in cfg["dbs"] else []
        if want_pg != "0" and "postgresql" in cfg["dbs"]:
            sys.path.insert(0, str(ROOT))
            from tests.pg import PgCluster, PostgresUnavailable

            try:
                cluster = PgCluster()
                cluster.start()
                dbs.append("postgresql")
                info["postgresql"] = cluster.bindir.parent.name
            except PostgresUnavailable as exc:
                if want_pg == "1":
                    raise
                log(f"PostgreSQL leg skipped: {exc}")
                cluster = None
        for db in dbs:
            stores: dict[int, tuple[str, dict[str, Any]]] = {}
            for size in cfg["sizes"]:
                workdir = workroot / f"{db}-{size}"
                workdir.mkdir()
                if db == "sqlite":
                    url = f"sqlite:///{workdir}/occi.db"
                else:
                    url = cluster.create_database(f"bench_{size}")
                one: dict[str, Any] = {}
                try:
                    cells = bench_store(db, url, size, cfg, workdir, one)
                except Exception as exc:  # report the other legs, then fail the run
                    log(f"   HARNESS ERROR on {db} {size:,}: {exc}")
                    harness_errors.append(f"{db} {size}: {exc}")
                    continue
                rows += [c.summary() for c in cells]
                server_settings.setdefault(db, one.get("settings", {}))
                stores[size] = (url, one["ds"])
                if "stream" in one:
                    extra["streams"].append(one["stream"])
                if db == "sqlite" and size >= 100_000 and "json" not in extra:
                    extra["json"] = json_vs_dumps(url)
                    j = extra["json"]
                    log(
                        f"   JSON render of {j['entities']:,}: {j['render_s'] * 1000:.0f} ms, "
                        f"json.dumps {j['dumps_s'] * 1000:.0f} ms ({j['ratio']:.2f}x); "
                        f"loading them from the store {j['load_s'] * 1000:.0f} ms"
                    )
                log(f"   elapsed {time.monotonic() - t_start:.0f} s")
            if len(stores) >= 2 and {"get_entity", "page"} & set(
                cfg["scenarios"] or ["get_entity"]
            ):
                log(f"\n== {db}: {min(stores):,} and {max(stores):,} entities side by side")
                try:
                    extra.setdefault("scale", []).extend(scale_compare(db, stores, cfg, workroot))
                except Exception as exc:
                    log(f"   HARNESS ERROR on {db} scale: {exc}")
                    harness_errors.append(f"{db} scale: {exc}")
                log(f"   elapsed {time.monotonic() - t_start:.0f} s")
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workroot, ignore_errors=True)
    checks = targets(rows, extra)
    lines = table(rows)
    shown = [
        f"Server settings on {db} (read back from the running server, bench/run.py "
        "check_settings): " + ", ".join(f"{k}={v}" for k, v in ss.items())
        for db, ss in server_settings.items()
    ]
    log("\n" + "\n".join(shown))
    log("\n" + "\n".join(lines))
    log("\nTargets:")
    for c in checks:
        log(f"  [{mark(c['ok'])}] {c['target']} ({c['where']}): {c['figure']}")
    elapsed = time.monotonic() - t_start
    failed = sum(not c["ok"] for c in checks)
    log(f"\n{len(checks) - failed} of {len(checks)} targets met; {elapsed:.0f} s")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    doc = {
        "when": stamp,
        "machine": info,
        "settings": cfg,
        "server_settings": server_settings,
        "rows": rows,
        "targets": checks,
        "harness_errors": harness_errors,
        "json_vs_dumps": extra.get("json"),
        "streams": extra["streams"],
        "seconds": round(elapsed, 1),
    }
    text = json.dumps(doc, indent=2)
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / f"bench-{stamp}.json").write_text(text)
    md = [
        f"Run {stamp} on {info['nproc']} CPUs ({info['cpu']}), {info['memory_gb']} GB RAM, "
        f"Python {info['python']}, SQLite {info['sqlite']}"
        + (f", PostgreSQL {info['postgresql']}" if "postgresql" in info else "")
        + f"; wrk -t{cfg['threads']} -c{cfg['connections']} -d{cfg['duration']}s, "
        f"{cfg['workers']} gunicorn workers, {elapsed:.0f} s in all.",
        "",
        *(line + "." for line in shown),
        "",
        *lines,
        "",
        "| target | where | figure | |",
        "|---|---|---|---|",
    ]
    md += [f"| {c['target']} | {c['where']} | {c['figure']} | {mark(c['ok'])} |" for c in checks]
    (RESULTS / "latest.md").write_text("\n".join(md) + "\n")
    log(f"results: {RESULTS / 'latest.json'} and latest.md")
    if harness_errors:
        log("the harness failed on: " + "; ".join(harness_errors))
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)

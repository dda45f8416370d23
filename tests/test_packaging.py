"""The package as a user installs it: a wheel built from the tree, installed into a fresh
virtual environment, serving requests from outside the source tree.

A directory of code without __init__.py, or data read beside the source instead of from the
installed package, only shows up here: the source tree and an editable install hide it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import requests

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[1]
#: what the wheel is built from (setup.py's TOP and the files setup.py reads)
TOP = ("occi", "rendering", "backends", "schemas")
BUILD_FILES = ("setup.py", "pyproject.toml", "README.md")
#: extras that are not a backend's
NOT_BACKEND_EXTRAS = {"test", "postgresql"}
INFRA = "http://schemas.ogf.org/occi/infrastructure#"
JSON = "application/occi+json"

pytestmark = pytest.mark.packaging


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the test run's PYTHONPATH (which points at the tree)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OCCI_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(extra)
    return env


def tree_files() -> set[str]:
    out = set()
    for top in TOP:
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                out.add(path.relative_to(ROOT).as_posix())
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """The wheel built from a copy of the tree (the build leaves build/ behind), and the
    build's verbose output."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in BUILD_FILES:
        shutil.copy(ROOT / name, src / name)
    for top in TOP:
        shutil.copytree(ROOT / top, src / top, ignore=shutil.ignore_patterns("__pycache__"))
    p = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", str(src), "-w", str(tmp)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    (wheel,) = tmp.glob("occi_server-*.whl")
    return wheel, p.stdout + p.stderr


def test_build_prints_no_setuptools_warnings(built):
    _, output = built
    warnings = [
        line
        for line in output.splitlines()
        if re.search(r"warn", line, re.IGNORECASE)
        # pip's own notes on this machine's index configuration, not the build's
        and not line.strip().startswith("WARNING: Location")
        # PYTHONDONTWRITEBYTECODE in the environment, not the package
        and "byte-compiling is disabled" not in line
    ]
    assert warnings == []


def test_wheel_holds_every_file_of_the_tree(built):
    wheel, _ = built
    names = set(zipfile.ZipFile(wheel).namelist())
    assert tree_files() - names == set()


def test_every_extra_comes_with_its_backend(built):
    """An extra appears with its backend, never before it: each extra other than test and
    postgresql is named by a backend entry point, and each such entry point's module ships."""
    wheel, _ = built
    with zipfile.ZipFile(wheel) as z:
        info = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(z.read(info).decode())
        entry_points = z.read(info.replace("METADATA", "entry_points.txt")).decode()
        names = set(z.namelist())
    extras = set(metadata.get_all("Provides-Extra") or []) - NOT_BACKEND_EXTRAS
    section = entry_points.split("[occi.backends]", 1)[1].split("\n[", 1)[0]
    backends = [line for line in section.splitlines() if "=" in line]
    named: set[str] = set()
    for line in backends:
        target = line.split("=", 1)[1].strip()
        module = target.split(":", 1)[0].strip()
        assert f"{module.replace('.', '/')}/__init__.py" in names or f"{module}.py" in names
        if "[" in target:
            named.update(e.strip() for e in target.split("[", 1)[1].rstrip("]").split(","))
    assert extras == named


def entry_point_section(entry_points: str, group: str) -> dict[str, str]:
    """name -> target of one group of an entry_points.txt."""
    section = entry_points.split(f"[{group}]", 1)[1].split("\n[", 1)[0]
    pairs = (line.split("=", 1) for line in section.splitlines() if "=" in line)
    return {name.strip(): target.strip() for name, target in pairs}


def test_every_backend_in_the_wheel_declares_a_contract_target(built):
    """Each backend of the wheel is in occi.backend_contracts (the contract suite runs on what
    is declared there), with the same extra, and the target's module ships."""
    wheel, _ = built
    with zipfile.ZipFile(wheel) as z:
        info = next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))
        entry_points = z.read(info).decode()
        names = set(z.namelist())
    backends = entry_point_section(entry_points, "occi.backends")
    contracts = entry_point_section(entry_points, "occi.backend_contracts")
    assert set(contracts) == set(backends)
    for name, target in contracts.items():
        module, _, rest = target.partition(":")
        assert f"{module.replace('.', '/')}.py" in names, target
        assert rest.partition("[")[2] == backends[name].partition("[")[2], name


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed (pip install of the file, as a
    user does: no libvirt extra)."""
    wheel, _ = built
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    p = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return venv


def test_installed_wheel_serves_from_outside_the_tree(venv, tmp_path):
    """Migrate, then serve a create whose job the runner (occi.jobs) finishes, with the JSON
    schema read from the installed package."""
    bin_ = venv / "bin"
    run = tmp_path / "run"
    run.mkdir()
    env = clean_env(
        OCCI_DATABASE_URL=f"sqlite:///{run}/occi.db", OCCI_LOG_LEVEL="WARNING", OCCI_AUTH="none"
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_ / "occi-server"), *args],
            cwd=run,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    where = subprocess.run(
        [
            str(bin_ / "python"),
            "-c",
            "import occi, schemas; print(occi.__file__, schemas.__file__)",
        ],
        cwd=run,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(path.startswith(str(venv)) for path in where.stdout.split()), where.stdout
    p = cli("migrate")
    assert p.returncode == 0, p.stderr
    p = cli("backends")
    assert p.returncode == 0, p.stderr
    assert "simulator  usable" in p.stdout
    assert "pip install 'occi-server[libvirt]'" in p.stdout  # the fresh venv has no libvirt

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen(
        [str(bin_ / "occi-server"), "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=run,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(300):
            assert proc.poll() is None, log.seek(0) or log.read()
            try:
                r = requests.get(url + "/-/", headers={"Accept": JSON}, timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert r.status_code == 200, r.text
        r = requests.post(
            url + "/compute/",
            json={"kind": INFRA + "compute", "attributes": {"occi.core.title": "from a wheel"}},
            headers={"Content-Type": JSON, "Accept": JSON},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        # the job ran (the answer waits for it by default): not still "creating"
        assert r.json()["attributes"]["occi.compute.state.message"] != "creating", r.text
        # a body the JSON schema (read from the installed schemas package) refuses
        r = requests.post(
            url + "/compute/",
            json={"kind": INFRA + "compute", "attributes": {"occi.core.title": 5}},
            headers={"Content-Type": JSON, "Accept": JSON},
            timeout=30,
        )
        assert r.status_code == 400, r.text
        # the client command of the wheel (click, rich, httpx, PyYAML come with it)
        occi = subprocess.run(
            [str(bin_ / "occi"), "--url", url, "compute", "list", "-o", "json"],
            cwd=run,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert occi.returncode == 0, occi.stderr
        assert [d["title"] for d in json.loads(occi.stdout)] == ["from a wheel"]
        helped = subprocess.run([str(bin_ / "occi"), "--help"], capture_output=True, text=True)
        assert helped.returncode == 0 and "Exit codes:" in helped.stdout
        # the web console's templates and static files, read from the installed package
        r = requests.get(url + "/console/login", timeout=10)
        assert r.status_code == 200 and 'name="password"' in r.text, r.text
        r = requests.get(url + "/console/static/htmx.min.js", timeout=10)
        assert r.status_code == 200 and len(r.content) > 40_000
        assert proc.poll() is None
        p = cli("status")
        assert p.returncode == 0, p.stderr
        assert "JOBS done=1" in p.stdout, p.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.seek(0)
        output = log.read()
        log.close()
    assert "Traceback" not in output, output


#: run in the installed environment: every declared target, loaded, or why not
RESOLVE_CONTRACTS = """
import sys, tempfile
from pathlib import Path
from occi import plugins
print("declared", *plugins.contract_names())
for name in plugins.contract_names():
    try:
        target = plugins.load_contract(name)
    except plugins.BackendNotFound as exc:
        print("unloadable", name, exc)
        continue
    with tempfile.TemporaryDirectory() as tmp:
        cluster = target.make(Path(tmp))
        sizes = [cluster.backend.host_capacity(h.uri) for h in cluster.hosts]
        assert all(s is not None for s in sizes), sizes
        assert [(s.cores, s.memory_mb) for s in sizes] == [
            (h.cores, h.memory_mb) for h in cluster.hosts
        ]
        where = sys.modules[type(cluster.backend).__module__].__file__
        print("loaded", name, cluster.backend.name, len(cluster.hosts), where)
        cluster.backend.close()
"""


def venv_python(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [str(venv / "bin" / "python"), *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_contract_targets_resolve_from_the_installed_wheel(venv, tmp_path):
    """The entry points of a plain install load the targets, and the simulator's makes its
    cluster from the installed package alone; libvirt's, vSphere's and XenServer's say what to
    install (no extra here)."""
    p = venv_python(venv, tmp_path / "run", "-c", RESOLVE_CONTRACTS)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    declared = next(line for line in lines if line.startswith("declared "))
    assert {"libvirt", "simulator", "vsphere", "xenserver"} <= set(declared.split()[1:])
    loaded = next(line for line in lines if line.startswith("loaded simulator"))
    assert loaded.split()[2:4] == ["simulator", "3"]
    assert loaded.split()[4].startswith(str(venv))  # the installed package, not the tree
    unloadable = next(line for line in lines if line.startswith("unloadable libvirt"))
    assert "pip install 'occi-server[libvirt]'" in unloadable
    unloadable = next(line for line in lines if line.startswith("unloadable vsphere"))
    assert "pip install 'occi-server[vsphere]'" in unloadable
    unloadable = next(line for line in lines if line.startswith("unloadable xenserver"))
    assert "pip install 'occi-server[xenserver]'" in unloadable


THIRD_PARTY_SETUP = """
from setuptools import setup

setup(
    name="occi-thirdparty",
    version="1.0",
    py_modules=["occi_thirdparty"],
    entry_points={
        "occi.backends": ["thirdparty=occi_thirdparty:ThirdPartyBackend"],
        "occi.backend_contracts": ["thirdparty=occi_thirdparty:TARGET"],
    },
)
"""
THIRD_PARTY_MODULE = """
from pathlib import Path

from backends.contract import ContractCluster, ContractHost, ContractTarget
from backends.simulator import SimulatorBackend


class ThirdPartyBackend(SimulatorBackend):
    name = "thirdparty"


HOSTS = (ContractHost("tp-a", "tp-a", 6, 12 * 1024), ContractHost("tp-b", "tp-b", 3, 6 * 1024))


def make(tmp: Path) -> ContractCluster:
    settings = {"database_url": f"sqlite:///{tmp / 'tp.db'}", "simulator_hosts": "tp-a:6:12,tp-b:3:6"}
    return ContractCluster(ThirdPartyBackend(settings), HOSTS)


TARGET = ContractTarget(name="thirdparty", make=make)
"""


def test_a_backend_from_another_distribution_joins_the_contract_suite(venv, tmp_path):
    """A backend package installed beside the server (plain pip install, not editable) that
    declares its target is run by the contract suite, unchanged, with nothing listed by hand."""
    src = tmp_path / "thirdparty"
    src.mkdir()
    (src / "setup.py").write_text(THIRD_PARTY_SETUP)
    (src / "occi_thirdparty.py").write_text(THIRD_PARTY_MODULE)
    for args in (
        ["--no-deps", str(src)],  # built in pip's isolated environment, as a user's would be
        ["pytest"],  # what the suite needs
    ):
        p = venv_python(venv, tmp_path, "-m", "pip", "install", "--quiet", *args)
        assert p.returncode == 0, p.stdout + p.stderr
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(ROOT / "tests" / "backends" / "test_contract.py", suite / "test_contract.py")
    p = venv_python(
        venv,
        suite,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-k",
        "thirdparty or every_installed",
        "test_contract.py",
    )
    assert p.returncode == 0, p.stdout + p.stderr
    passed = re.search(r"(\d+) passed", p.stdout)
    assert passed and int(passed.group(1)) >= 20, p.stdout
    assert "skipped" not in p.stdout and "deselected" in p.stdout, p.stdout

"""VMware's vSphere simulator for the tests: main.go (beside this file) built once with Debian's
Go and govmomi (`golang-go`, `golang-github-vmware-govmomi-dev`: `make system-deps`) into a
cache directory keyed by the source's hash, and started on loopback, one process per model
(`vpx`: vCenter, `esx`: a standalone ESXi host) for the whole test session.

Each simulator gets the template TEMPLATE (a VM marked as template: what os_tpl mixins list).
No pytest here: tests/conftest.py stops the processes at the end of the session.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.live import free_port

SOURCE = Path(__file__).with_name("main.go")
GOPATH_SYSTEM = "/usr/share/gocode"
CACHE = Path(os.environ.get("OCCI_VCSIM_CACHE", "/var/tmp/occi-test-vcsim"))
USER, PASSWORD = "occi", "vcsim-secret"
TEMPLATE = "tiny-linux"
#: the models' inventory names
MODELS = {
    "vpx": {"datacenter": "DC0", "cluster": "DC0_C0", "datastore": "LocalDS_0"},
    "esx": {"datacenter": "ha-datacenter", "datastore": "LocalDS_0"},
}
_lock = threading.Lock()
_running: dict[str, Vcsim] = {}


class VcsimUnavailable(RuntimeError):
    """The simulator cannot be built or started here (say why; never skip)."""


def binary() -> Path:
    """The simulator built from main.go (built once per source version)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    out = CACHE / f"vcsim-{digest}"
    if out.exists():
        return out
    go = shutil.which("go")
    if go is None or not Path(GOPATH_SYSTEM, "src/github.com/vmware/govmomi").is_dir():
        raise VcsimUnavailable(
            "building vcsim needs golang-go and golang-github-vmware-govmomi-dev "
            "(make system-deps installs them)"
        )
    work = CACHE / f"build-{digest}-{os.getpid()}"
    src = work / "src" / "occivcsim"
    src.mkdir(parents=True, exist_ok=True)
    shutil.copy(SOURCE, src / "main.go")
    env = {
        **os.environ,
        "GO111MODULE": "off",
        # without a C compiler (make system-deps installs no recommends) cgo is off; with one,
        # Go's prebuilt standard library is used (about three times faster)
        "CGO_ENABLED": "1" if shutil.which("gcc") else "0",
        "GOPROXY": "off",
        "GOPATH": f"{work}:{GOPATH_SYSTEM}",
        "GOCACHE": str(CACHE / "gocache"),
    }
    tmp = work / "vcsim"
    done = subprocess.run(
        [go, "build", "-o", str(tmp), "."], cwd=src, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise VcsimUnavailable(f"go build of vcsim failed: {done.stderr[-2000:]}")
    os.replace(tmp, out)
    shutil.rmtree(work, ignore_errors=True)
    return out


@dataclass
class Vcsim:
    """A running simulator: its SDK URL and how to reach it."""

    model: str
    proc: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/sdk"

    @property
    def inventory(self) -> dict[str, str]:
        return MODELS[self.model]

    def settings(self, **more: Any) -> dict[str, str]:
        """The backend's settings (lower-case, as the server hands them over) for this model."""
        out = {
            "vsphere_url": self.url,
            "vsphere_user": USER,
            "vsphere_password": PASSWORD,
            "vsphere_insecure": "1",
            **{f"vsphere_{k}": v for k, v in self.inventory.items()},
        }
        out.update({k: str(v) for k, v in more.items()})
        return out

    def env(self, **more: Any) -> dict[str, str]:
        """The same as OCCI_* environment variables (the one-cluster shorthand)."""
        return {"OCCI_BACKEND": "vsphere"} | {
            "OCCI_" + k.upper(): v for k, v in self.settings(**more).items()
        }

    def connect(self) -> Any:
        from pyVim.connect import SmartConnect

        return SmartConnect(
            host="127.0.0.1",
            port=self.port,
            user=USER,
            pwd=PASSWORD,
            disableSslCertValidation=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(model: str, port: int | None = None) -> Vcsim:
    """A simulator of its own for a test (the caller stops it), on `port` if given."""
    port = port or free_port()
    proc = subprocess.Popen(
        [
            str(binary()),
            "-model",
            model,
            "-listen",
            f"127.0.0.1:{port}",
            "-user",
            USER,
            "-password",
            PASSWORD,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first.startswith("https://"):
        proc.kill()
        raise VcsimUnavailable(f"vcsim did not start: {first}{proc.stdout.read()[-2000:]}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain its log
    sim = Vcsim(model, proc, port)
    try:
        add_template(sim)
    except BaseException:
        sim.stop()
        raise
    return sim


def shared(model: str = "vpx") -> Vcsim:
    """The session's simulator of this model, started on first use."""
    with _lock:
        sim = _running.get(model)
        if sim is None or sim.proc.poll() is not None:
            sim = _running[model] = start(model)
        return sim


def stop_all() -> None:
    with _lock:
        for sim in _running.values():
            sim.stop()
        _running.clear()


atexit.register(stop_all)


def add_template(sim: Vcsim) -> None:
    """Make TEMPLATE in the simulator: a small VM with a disk, marked as a template."""
    from pyVim.connect import Disconnect
    from pyVmomi import vim

    si = sim.connect()
    try:
        content = si.RetrieveContent()
        dc = next(
            d for d in content.rootFolder.childEntity if d.name == sim.inventory["datacenter"]
        )
        compute = next(
            c
            for c in dc.hostFolder.childEntity
            if sim.model == "esx" or c.name == sim.inventory.get("cluster")
        )
        ds = sim.inventory["datastore"]
        controller = vim.vm.device.ParaVirtualSCSIController(
            key=-100, busNumber=0, sharedBus="noSharing"
        )
        disk = vim.vm.device.VirtualDisk(
            key=-101,
            controllerKey=-100,
            unitNumber=0,
            capacityInKB=1024 * 1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName="", diskMode="persistent", thinProvisioned=True
            ),
        )
        spec = vim.vm.ConfigSpec(
            name=TEMPLATE,
            guestId="otherGuest64",
            numCPUs=1,
            memoryMB=256,
            files=vim.vm.FileInfo(vmPathName=f"[{ds}]"),
            deviceChange=[
                vim.vm.device.VirtualDeviceSpec(operation="add", device=controller),
                vim.vm.device.VirtualDeviceSpec(
                    operation="add", device=disk, fileOperation="create"
                ),
            ],
        )
        task = dc.vmFolder.CreateVM_Task(config=spec, pool=compute.resourcePool)
        vm = task.info.result
        vm.MarkAsTemplate()
    finally:
        Disconnect(si)

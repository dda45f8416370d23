"""End to end on real KVM/QEMU: the OCCI API over HTTP, a gunicorn server with the libvirt
backend on qemu:///system, and the tiny guest (tests/e2e/guest.py) booting from an os_tpl image.

Needs root, libvirtd and QEMU (tests/e2e/setup-libvirt.sh installs them; tests/e2e/libvirtd.py
starts the daemons when no systemd does). Everything the test makes lives in pools, directories
and networks of its own, and is gone afterwards: the last assertion checks that no domain,
volume or network named occi-* is left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
import requests

from backends.libvirt import LibvirtBackend
from occi.model import Resource
from tests.e2e import guest, libvirtd
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
INFRA = "http://schemas.ogf.org/occi/infrastructure#"
ACT = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
CRTP = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"
OS_TPL = "http://occi.libvirt.local/os_tpl#"
JSON = {"Content-Type": "application/occi+json", "Accept": "application/occi+json"}
URI = libvirtd.URI
#: generous bounds for a shared 2-core machine under TCG (boot takes ~5 s there)
BOOT_TIMEOUT = 90
STATE_TIMEOUT = 60

pytestmark = pytest.mark.server


class Env:
    """The pools, directories and server of one test run."""

    def __init__(self, tmp: Path):
        self.tag = uuid.uuid4().hex[:8]
        self.base = Path(f"/var/lib/libvirt/occi-e2e-{self.tag}")
        self.images = self.base / "images"
        self.volumes = self.base / "volumes"
        self.console = self.base / "console"
        self.image_pool = f"e2e-images-{self.tag}"
        self.volume_pool = f"e2e-volumes-{self.tag}"
        self.tmp = tmp
        self.conn = libvirt.open(URI)
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.networks: set[str] = set()

    def prepare(self, image: Path) -> None:
        for d in (self.images, self.volumes, self.console):
            d.mkdir(parents=True, exist_ok=True)
        # QEMU runs as libvirt-qemu: it must reach the volumes and write its console log
        os.chmod(self.base, 0o755)
        for d in (self.images, self.volumes):
            os.chmod(d, 0o755)
        os.chmod(self.console, 0o1777)
        shutil.copyfile(image, self.images / "tiny.img")

    def settings(self) -> dict[str, str]:
        """The server's OCCI_* settings."""
        return {
            "OCCI_DATABASE_URL": f"sqlite:///{self.tmp}/occi.db",
            "OCCI_LOG_LEVEL": "WARNING",
            "OCCI_AUTH": "none",
            "OCCI_BACKEND": "libvirt",
            "OCCI_LIBVIRT_URI": URI,
            "OCCI_LIBVIRT_DOMAIN_TYPE": "qemu",
            "OCCI_LIBVIRT_POOL": self.volume_pool,
            "OCCI_LIBVIRT_POOL_PATH": str(self.volumes),
            "OCCI_LIBVIRT_IMAGE_POOL": self.image_pool,
            "OCCI_LIBVIRT_IMAGE_POOL_PATH": str(self.images),
            "OCCI_LIBVIRT_CONSOLE_DIR": str(self.console),
            "OCCI_LIBVIRT_TEMPLATES": "tiny:1:0.25",
        }

    def backend(self) -> LibvirtBackend:
        """A backend of our own on the server's settings, to look at the platform directly."""
        return LibvirtBackend({k[5:].lower(): v for k, v in self.settings().items()})

    def start_server(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
        env.update({"PYTHONPATH": str(ROOT), **self.settings()})
        self.log = open(self.tmp / "server.log", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "occi.cli", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            cwd=self.tmp,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                if requests.get(self.url + "/-/", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.3)
        raise RuntimeError(f"server did not come up: {self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-6000:]

    # ------------------------------------------------------------------ inspection
    def ours(self) -> dict[str, list[str]]:
        """Every domain, network and volume named occi-* this test could have made."""
        vols: list[str] = []
        for pool_name in (self.volume_pool, self.image_pool):
            try:
                pool = self.conn.storagePoolLookupByName(pool_name)
                pool.refresh(0)
                vols += [v for v in pool.listVolumes() if v.startswith("occi-")]
            except libvirt.libvirtError:
                pass
        return {
            "domains": [
                d.name()
                for d in self.conn.listAllDomains()
                if d.name().startswith("occi-") and self._mine(d)
            ],
            "networks": [
                n.name()
                for n in self.conn.listAllNetworks()
                if n.name().startswith("occi-") and n.name() in self.networks
            ],
            "volumes": vols,
        }

    def _mine(self, dom) -> bool:  # noqa: ANN001
        return f"e2e-volumes-{self.tag}" in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)

    def cleanup(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        left = self.ours()
        for name in left["domains"]:
            dom = self.conn.lookupByName(name)
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
        for name in left["networks"]:
            net = self.conn.networkLookupByName(name)
            if net.isActive():
                net.destroy()
            net.undefine()
        for pool_name in (self.volume_pool, self.image_pool):
            try:
                pool = self.conn.storagePoolLookupByName(pool_name)
            except libvirt.libvirtError:
                continue
            for vol in pool.listAllVolumes(0):
                vol.delete(0)
            if pool.isActive():
                pool.destroy()
            pool.undefine()
        shutil.rmtree(self.base, ignore_errors=True)
        self.conn.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Iterator[Env]:
    if os.geteuid() != 0:
        pytest.fail(
            "the QEMU end-to-end test needs root (make test runs it as root)", pytrace=False
        )
    libvirtd.ensure_running(URI)
    image = guest.build()
    e = Env(tmp_path_factory.mktemp("libvirt-e2e"))
    try:
        e.prepare(image)
        e.start_server()
        yield e
    finally:
        server_log = e.output() if e.proc is not None else ""
        e.cleanup()
        if server_log:
            print(server_log[-3000:])


# ---------------------------------------------------------------------------- HTTP helpers
def post(env: Env, path: str, body: dict, expect: int = 201) -> requests.Response:
    url = path if path.startswith("http") else env.url + path
    r = requests.post(url, json=body, headers=JSON, timeout=120)
    assert r.status_code == expect, f"{path}: {r.status_code} {r.text}\n{env.output()}"
    return r


def get(env: Env, location: str) -> dict:
    r = requests.get(location, headers=JSON, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def act(env: Env, location: str, action: str, scheme: str = ACT, **params) -> dict:
    body: dict = {"action": scheme + action}
    if params:
        body["attributes"] = params
    r = requests.post(f"{location}?action={action}", json=body, headers=JSON, timeout=120)
    assert r.status_code == 200, f"{action}: {r.status_code} {r.text}\n{env.output()}"
    return r.json()


def wait_state(
    env: Env, location: str, attr: str, value: str, timeout: float = STATE_TIMEOUT
) -> dict:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = get(env, location)["attributes"]
        if seen.get(attr) == value:
            return seen
        if seen.get(attr) == "error":
            break
        time.sleep(0.5)
    raise AssertionError(
        f"{location}: {attr} did not become {value}; last seen {seen}\n{env.output()}"
    )


def console_count(env: Env, domain: str, marker: str) -> int:
    log = env.console / f"{domain}.log"
    return log.read_text(errors="replace").count(marker) if log.exists() else 0


def wait_console(
    env: Env, domain: str, marker: str, count: int = 1, timeout: float = BOOT_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if console_count(env, domain, marker) >= count:
            return
        time.sleep(0.5)
    log = env.console / f"{domain}.log"
    text = log.read_text(errors="replace")[-2000:] if log.exists() else "(no console log)"
    raise AssertionError(f"{marker} x{count} not on {domain}'s console:\n{text}")


# ---------------------------------------------------------------------------- the test
def test_compute_storage_network_on_real_qemu(env: Env):
    # discovery: the pool's image is an os_tpl; CRTP and configured resource_tpls are offered
    cats = requests.get(env.url + "/-/", headers=JSON, timeout=30).json()
    mixin_ids = {m["scheme"] + m["term"] for m in cats["mixins"]}
    assert OS_TPL + "tiny" in mixin_ids
    assert (
        CRTP + "small" in mixin_ids and "http://occi.libvirt.local/resource_tpl#tiny" in mixin_ids
    )

    # network: isolated, with an address plan; up
    octet = int(env.tag[:2], 16) % 200 + 20
    r = post(
        env,
        "/network/",
        {
            "kind": INFRA + "network",
            "mixins": [INFRA[:-1] + "/network#ipnetwork"],
            "attributes": {"occi.network.address": f"10.213.{octet}.0/24"},
        },
    )
    net = r.headers["Location"]
    net_name = "occi-" + net.rsplit("/", 1)[1]
    env.networks.add(net_name)
    act(env, net, "up", scheme=INFRA[:-1] + "/network/action#")
    wait_state(env, net, "occi.network.state", "active")
    assert env.conn.networkLookupByName(net_name).isActive()
    net_xml = env.conn.networkLookupByName(net_name).XMLDesc(0)
    assert "<forward" not in net_xml and f"10.213.{octet}.1" in net_xml

    # storage: a qcow2 volume, grown by updating occi.storage.size
    r = post(
        env, "/storage/", {"kind": INFRA + "storage", "attributes": {"occi.storage.size": 0.5}}
    )
    stor = r.headers["Location"]
    vol_name = f"occi-{stor.rsplit('/', 1)[1]}.qcow2"
    pool = env.conn.storagePoolLookupByName(env.volume_pool)
    assert pool.storageVolLookupByName(vol_name).info()[1] == 512 << 20
    post(env, stor, {"attributes": {"occi.storage.size": 1.0}}, expect=200)
    assert pool.storageVolLookupByName(vol_name).info()[1] == 1 << 30
    assert get(env, stor)["attributes"]["occi.storage.size"] == 1.0

    # compute from the image with a resource template, a disk and a NIC
    r = post(
        env,
        "/compute/",
        {
            "kind": INFRA + "compute",
            "mixins": [OS_TPL + "tiny", "http://occi.libvirt.local/resource_tpl#tiny"],
            "attributes": {"occi.core.title": "e2e tiny guest"},
        },
    )
    vm = r.headers["Location"]
    dom_name = "occi-" + vm.rsplit("/", 1)[1]
    assert get(env, vm)["attributes"]["occi.compute.cores"] == 1
    r = post(
        env,
        "/link/storagelink/",
        {
            "kind": INFRA + "storagelink",
            "source": {"location": vm.removeprefix(env.url)},
            "target": {"location": stor.removeprefix(env.url), "kind": INFRA + "storage"},
        },
    )
    disk = get(env, r.headers["Location"])
    assert disk["attributes"]["occi.storagelink.deviceid"] == "vdb"
    r = post(
        env,
        "/link/networkinterface/",
        {
            "kind": INFRA + "networkinterface",
            "source": {"location": vm.removeprefix(env.url)},
            "target": {"location": net.removeprefix(env.url), "kind": INFRA + "network"},
        },
    )
    mac = get(env, r.headers["Location"])["attributes"]["occi.networkinterface.mac"]
    dom = env.conn.lookupByName(dom_name)
    xml = dom.XMLDesc(0)
    assert vol_name in xml and mac in xml and "type='qemu'" in xml

    # start: the guest boots from its cloned disk and prints its marker
    t0 = time.monotonic()
    act(env, vm, "start")
    wait_state(env, vm, "occi.compute.state", "active")
    wait_console(env, dom_name, guest.MARKER)
    boot_s = time.monotonic() - t0
    # the guest listens for the power button only once it has found its input device, a
    # moment after the marker: a press before that is lost (seen once under load)
    wait_console(env, dom_name, "power button: /dev/input/")

    # graceful stop: the request returns at once; the guest powers off on the ACPI button and
    # the server learns of it from libvirt (events / reconcile calling observe())
    t0 = time.monotonic()
    out = act(env, vm, "stop", method="graceful")
    assert out["attributes"]["occi.compute.state"] in ("active", "inactive")
    if out["attributes"]["occi.compute.state"] == "active":
        assert "stopping" in out["attributes"]["occi.compute.state.message"]
    backend = env.backend()
    entity = Resource(kind=INFRA + "compute", id=vm.rsplit("/", 1)[1])
    deadline = time.monotonic() + STATE_TIMEOUT
    while backend.observe(entity).attributes["occi.compute.state"] != "inactive":
        assert time.monotonic() < deadline, "the guest did not power off"
        time.sleep(0.5)
    assert backend.observe(entity).attributes["occi.compute.state.message"] == (
        "stopped by a graceful guest shutdown"
    )
    backend.close()
    # the server learns it from libvirt's events or its periodic reconcile (observe())
    seen = wait_state(env, vm, "occi.compute.state", "inactive")
    assert "graceful" in seen["occi.compute.state.message"]
    stop_s = time.monotonic() - t0
    wait_console(env, dom_name, guest.POWEROFF_MARKER, timeout=5)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF

    # start again, suspend (pause), start (resume)
    act(env, vm, "start")
    wait_state(env, vm, "occi.compute.state", "active")
    wait_console(env, dom_name, guest.MARKER, count=2)
    act(env, vm, "suspend", method="suspend")
    wait_state(env, vm, "occi.compute.state", "suspended")
    assert dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED
    act(env, vm, "start")
    wait_state(env, vm, "occi.compute.state", "active")
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING

    # save: a new os_tpl image cloned from the disk, offered from now on
    saved = act(env, vm, "save", name=f"e2e-saved-{env.tag}")
    assert saved["term"] == f"e2e-saved-{env.tag}" and saved["scheme"] == OS_TPL
    images = env.conn.storagePoolLookupByName(env.image_pool)
    images.refresh(0)
    assert f"e2e-saved-{env.tag}.qcow2" in images.listVolumes()
    cats = requests.get(env.url + "/-/", headers=JSON, timeout=30).json()
    assert OS_TPL + saved["term"] in {m["scheme"] + m["term"] for m in cats["mixins"]}
    assert get(env, vm)["attributes"]["occi.compute.state"] == "active"

    # delete everything through the API; then nothing of ours is left on the hypervisor
    for location in (vm, stor):
        r = requests.delete(location, headers=JSON, timeout=120)
        assert r.status_code in (200, 204), r.text
    act(env, net, "down", scheme=INFRA[:-1] + "/network/action#")
    wait_state(env, net, "occi.network.state", "inactive")
    assert not env.conn.networkLookupByName(net_name).isActive()
    r = requests.delete(net, headers=JSON, timeout=120)
    assert r.status_code in (200, 204), r.text
    assert env.ours() == {"domains": [], "networks": [], "volumes": []}
    print(f"boot to marker {boot_s:.1f} s, graceful stop observed after {stop_s:.1f} s")

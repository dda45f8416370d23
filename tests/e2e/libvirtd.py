"""A running libvirtd for the end-to-end tests: started here when no daemon answers.

Touches processes and /dev/kvm only. Machines without systemd (containers, CI) get virtlogd and
libvirtd started as daemons (`-d -p PIDFILE`, no `--listen`); a daemon that already runs (under
systemd or from an earlier test run) is used as it is and left running.

    python -m tests.e2e.libvirtd      # ensures the daemons run, prints the URI
"""

from __future__ import annotations

import grp
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

URI = "qemu:///system"
SOCKETS = (Path("/run/libvirt/libvirt-sock"), Path("/var/run/libvirt/libvirt-sock"))
PIDFILES = {
    "virtlogd": Path("/run/occi-test-virtlogd.pid"),
    "libvirtd": Path("/run/occi-test-libvirtd.pid"),
}


class LibvirtdUnavailable(RuntimeError):
    pass


def fix_kvm_permissions() -> None:
    """`/dev/kvm` readable by the kvm group: else every libvirt call re-probes QEMU for seconds."""
    kvm = Path("/dev/kvm")
    if not kvm.exists() or os.geteuid() != 0:
        return
    try:
        gid = grp.getgrnam("kvm").gr_gid
    except KeyError:
        return
    st = kvm.stat()
    if st.st_gid != gid or (st.st_mode & 0o777) != 0o660:
        os.chown(kvm, -1, gid)
        os.chmod(kvm, 0o660)


def answers(uri: str = URI, timeout: float = 30.0) -> bool:
    """True when `virsh -c URI version` succeeds (the daemon and its QEMU driver answer)."""
    virsh = shutil.which("virsh")
    if virsh is None:
        return False
    try:
        p = subprocess.run([virsh, "-c", uri, "version"], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return p.returncode == 0


def _pid_of(daemon: str) -> int | None:
    """The pid our pidfile names, when that process is `daemon` itself.

    /run outlives the processes on some machines (containers restored from a snapshot), so a
    pidfile may name a pid that is gone or, worse, reused by another program: the process's
    name is checked, not only its existence.
    """
    try:
        pid = int(PIDFILES[daemon].read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if comm == daemon else None


def _stop(daemon: str, pid: int, grace: float = 10.0) -> None:
    """Stop a daemon that runs but does not answer, so that a fresh one can take its sockets."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _pid_of(daemon) == pid:
            time.sleep(0.2)
        if _pid_of(daemon) == pid:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    log.warning("stopped %s (pid %d): it did not answer", daemon, pid)


def _start(daemon: str) -> None:
    path = shutil.which(daemon) or f"/usr/sbin/{daemon}"
    if not Path(path).exists():
        raise LibvirtdUnavailable(f"{daemon} is not installed (tests/e2e/setup-libvirt.sh)")
    pidfile = PIDFILES[daemon]
    pidfile.unlink(missing_ok=True)
    Path("/run/libvirt").mkdir(parents=True, exist_ok=True)
    p = subprocess.run([path, "-d", "-p", str(pidfile)], capture_output=True, text=True)
    if p.returncode != 0:
        raise LibvirtdUnavailable(f"{daemon} did not start: {p.stderr.strip()}")
    log.info("started %s", daemon)


def _wait(uri: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(uri):
            return True
        time.sleep(0.5)
    return False


def ensure_running(uri: str = URI, timeout: float = 60.0) -> str:
    """Make sure libvirtd answers on `uri`; start virtlogd and libvirtd when needed.

    A daemon of ours that runs but does not answer (wedged, or left by an earlier run in a state
    it cannot leave) is stopped and started afresh, once.
    """
    fix_kvm_permissions()
    if any(s.exists() for s in SOCKETS) and answers(uri):
        return uri
    if os.geteuid() != 0:
        raise LibvirtdUnavailable("libvirtd does not answer and only root can start it")
    for attempt in (1, 2):
        for daemon in ("virtlogd", "libvirtd"):
            pid = _pid_of(daemon)
            if pid is not None and attempt == 2:
                _stop(daemon, pid)
                pid = None
            if pid is None:
                _start(daemon)
        if _wait(uri, timeout):
            return uri
    raise LibvirtdUnavailable(
        f"libvirtd was started twice but {uri} does not answer within {timeout:g} s"
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(ensure_running())

"""The tiny test guest: a bootable disk image built from Debian packages, cached between runs.

Touches apt (download only), dpkg-deb, cpio, dosfstools, mtools and syslinux. The image is a
FAT "superfloppy" made bootable by syslinux: SeaBIOS loads it like any disk, syslinux loads the
Debian cloud kernel and a busybox initrd whose /init prints MARKER on the serial console and
powers off when the ACPI power button is pressed (so libvirt's graceful shutdown completes).
Because the guest boots from its own disk, a clone of that disk (the `save` action) boots too.

    python -m tests.e2e.guest [CACHE_DIR]   # builds (or finds) the image and prints its path
"""

from __future__ import annotations

import gzip
import logging
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = "OCCI-TINY-GUEST-READY"
POWEROFF_MARKER = "OCCI-TINY-GUEST-POWER-BUTTON"
#: bump when the recipe changes so cached images are rebuilt
RECIPE = "3"
DEFAULT_CACHE = Path(os.environ.get("OCCI_TEST_GUEST_CACHE", "/var/tmp/occi-test-guest"))
IMAGE_NAME = "tiny.img"
IMAGE_MB = 48
TOOLS = ("apt-get", "apt-cache", "dpkg-deb", "cpio", "mkfs.vfat", "mcopy", "syslinux")

INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do insmod "$m" 2>/dev/null; done
echo "{MARKER} kernel $(uname -r)" > /dev/ttyS0
pb=""
for i in 1 2 3 4 5 6 7 8 9 10; do
  for ev in /sys/class/input/event*; do
    [ -e "$ev/device/name" ] || continue
    if grep -q "Power Button" "$ev/device/name"; then pb="/dev/input/${{ev##*/}}"; fi
  done
  [ -n "$pb" ] && [ -e "$pb" ] && break
  sleep 0.5
done
echo "power button: ${{pb:-none}}" > /dev/ttyS0
if [ -n "$pb" ]; then
  dd if="$pb" of=/dev/null bs=24 count=1 2>/dev/null
  echo "{POWEROFF_MARKER}" > /dev/ttyS0
  sync
  poweroff -f
fi
while true; do sleep 3600; done
"""

SYSLINUX_CFG = """SERIAL 0 115200
DEFAULT tiny
PROMPT 0
TIMEOUT 0
LABEL tiny
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0 quiet panic=-1
"""


class GuestBuildError(RuntimeError):
    pass


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise GuestBuildError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return p.stdout


def _kernel_package() -> str:
    out = _run(["apt-cache", "depends", "linux-image-cloud-amd64"])
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split(":", 1)[1].strip()
    raise GuestBuildError(
        "apt-cache knows no kernel behind linux-image-cloud-amd64 (apt-get update?)"
    )


def _download(packages: list[str], into: Path) -> list[Path]:
    try:
        _run(["apt-get", "download", *packages], cwd=into)
    except GuestBuildError:
        _run(["apt-get", "update", "-qq"])
        _run(["apt-get", "download", *packages], cwd=into)
    debs = sorted(into.glob("*.deb"))
    if len(debs) < len(packages):
        raise GuestBuildError(f"apt-get download {packages} gave {debs}")
    return debs


def _module(root: Path, name: str, dest: Path) -> None:
    """Copy kernel module `name` (e.g. evdev) out of the extracted kernel, uncompressed."""
    for pattern, opener in ((f"{name}.ko", open), (f"{name}.ko.xz", lzma.open)):
        found = sorted(root.glob(f"lib/modules/*/kernel/**/{pattern}"))
        if found:
            with opener(found[0], "rb") as src:
                (dest / f"{name}.ko").write_bytes(src.read())
            return
    log.warning("module %s is not in the kernel package (built in?)", name)


def _initrd(busybox: Path, modules_root: Path, work: Path) -> Path:
    root = work / "initrd"
    for d in ("bin", "dev", "proc", "sys", "lib/modules", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    (root / "bin" / "sh").symlink_to("busybox")
    for mod in ("button", "evdev"):
        _module(modules_root, mod, root / "lib" / "modules")
    init = root / "init"
    init.write_text(INIT)
    init.chmod(0o755)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    cpio = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
        input=("\n".join(files) + "\n").encode(),
        cwd=root,
        capture_output=True,
    )
    if cpio.returncode != 0:
        raise GuestBuildError(f"cpio failed: {cpio.stderr.decode()[-1000:]}")
    out = work / "initrd.gz"
    out.write_bytes(gzip.compress(cpio.stdout, compresslevel=6))
    return out


def build(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """The bootable tiny guest disk image (raw), built once and cached under `cache_dir`."""
    cache_dir = Path(cache_dir)
    image = cache_dir / IMAGE_NAME
    stamp = cache_dir / "recipe"
    if image.exists() and stamp.exists() and stamp.read_text().strip() == RECIPE:
        return image
    missing = missing_tools()
    if missing:
        raise GuestBuildError(
            f"building the test guest needs {', '.join(missing)} (tests/e2e/setup-libvirt.sh)"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="occi-guest-") as tmp:
        work = Path(tmp)
        (work / "debs").mkdir()
        kernel_pkg = _kernel_package()
        debs = _download([kernel_pkg, "busybox-static"], work / "debs")
        extracted = work / "x"
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(extracted)])
        vmlinuz = sorted(extracted.glob("boot/vmlinuz-*"))
        busybox = extracted / "bin" / "busybox"
        if not vmlinuz or not busybox.exists():
            raise GuestBuildError(f"no kernel or busybox in {[d.name for d in debs]}")
        initrd = _initrd(busybox, extracted, work)
        cfg = work / "syslinux.cfg"
        cfg.write_text(SYSLINUX_CFG)
        disk = work / IMAGE_NAME
        _run(["mkfs.vfat", "-n", "TINYGUEST", "-C", str(disk), str(IMAGE_MB * 1024)])
        env_img = ["-i", str(disk)]
        _run(["mcopy", *env_img, str(vmlinuz[0]), "::vmlinuz"])
        _run(["mcopy", *env_img, str(initrd), "::initrd.gz"])
        _run(["mcopy", *env_img, str(cfg), "::syslinux.cfg"])
        _run(["syslinux", "--install", str(disk)])
        shutil.move(str(disk), image)
    stamp.write_text(RECIPE + "\n")
    log.info("built the tiny guest at %s", image)
    return image


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CACHE))

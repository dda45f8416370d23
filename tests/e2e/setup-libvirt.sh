#!/bin/sh
# Installs what the libvirt tests need (idempotent): libvirt-python's build deps, libvirtd with
# the QEMU driver, QEMU for x86, dnsmasq for isolated networks, an ISO writer for cloud-init
# seeds, and the tools tests/e2e/guest.py builds the tiny guest with. As root it installs what is
# missing with apt and libvirt-python into the virtualenv; otherwise it only says what is missing.
#   usage: tests/e2e/setup-libvirt.sh [VENV]      (VENV defaults to .venv)
set -eu
VENV=${1:-.venv}
PACKAGES="libvirt-dev pkg-config libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients
qemu-system-x86 qemu-utils dnsmasq-base genisoimage cpio dosfstools mtools syslinux
syslinux-common"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done

if [ "$(id -u)" != "0" ]; then
  if [ -n "$missing" ]; then
    echo "setup-libvirt: not root; missing Debian packages:$missing" >&2
    echo "setup-libvirt: run as root: apt-get install -y --no-install-recommends$missing" >&2
  fi
  "$VENV/bin/python" -c "import libvirt" 2>/dev/null \
    || echo "setup-libvirt: libvirt-python is missing: $VENV/bin/pip install libvirt-python" >&2
  [ -z "$missing" ] || exit 1
  exit 0
fi

if [ -n "$missing" ]; then
  echo "setup-libvirt: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c "import libvirt" 2>/dev/null; then
  echo "setup-libvirt: installing libvirt-python into $VENV"
  "$VENV/bin/pip" install --quiet "libvirt-python>=9"
fi
# the kernel package the tiny guest is built from must be known to apt
apt-cache depends linux-image-cloud-amd64 >/dev/null 2>&1 || apt-get update -qq
echo "setup-libvirt: ready"

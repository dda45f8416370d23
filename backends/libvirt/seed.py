"""cloud-init NoCloud seeds: an ISO 9660 image labelled `cidata` with meta-data and user-data.

Touches only the filesystem and the ISO writer program (genisoimage, else xorriso): this is the
format cloud-init documents for NoCloud, and both writers ship in Debian. The backend uploads the
bytes into a raw volume and attaches it as a read-only CD-ROM, so the guest reads it at boot.
"""

from __future__ import annotations

import base64
import binascii
import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

WRITERS: tuple[tuple[str, list[str]], ...] = (
    ("genisoimage", []),
    ("xorriso", ["-as", "mkisofs"]),
    ("mkisofs", []),
)


class SeedError(RuntimeError):
    """No ISO writer is installed, or it failed."""


def decode_user_data(value: str | bytes | None) -> bytes:
    """occi.compute.userdata is Base64 (GFD.224); text that is not Base64 is taken as it is."""
    if not value:
        return b""
    raw = value.encode() if isinstance(value, str) else value
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw


def meta_data(instance_id: str, hostname: str | None, ssh_keys: Sequence[str]) -> str:
    """meta-data as YAML (written as JSON, which YAML reads)."""
    doc: dict[str, object] = {"instance-id": instance_id}
    if hostname:
        doc["local-hostname"] = hostname
    if ssh_keys:
        doc["public-keys"] = list(ssh_keys)
    return json.dumps(doc, indent=1) + "\n"


def user_data(raw: bytes, ssh_keys: Sequence[str]) -> bytes:
    if raw:
        return raw
    if ssh_keys:
        return (
            "#cloud-config\nssh_authorized_keys:\n"
            + "".join(f"  - {json.dumps(k)}\n" for k in ssh_keys)
        ).encode()
    return b"#cloud-config\n{}\n"


def writer() -> list[str] | None:
    for program, args in WRITERS:
        path = shutil.which(program)
        if path:
            return [path, *args]
    return None


def build_iso(
    instance_id: str, hostname: str | None, ssh_keys: Sequence[str], userdata: bytes
) -> bytes:
    cmd = writer()
    if cmd is None:
        raise SeedError("no ISO writer found: install genisoimage or xorriso")
    with tempfile.TemporaryDirectory(prefix="occi-seed-") as tmp:
        d = Path(tmp)
        (d / "meta-data").write_text(meta_data(instance_id, hostname, ssh_keys))
        (d / "user-data").write_bytes(user_data(userdata, ssh_keys))
        out = d / "seed.iso"
        p = subprocess.run(
            [
                *cmd,
                "-quiet",
                "-output",
                str(out),
                "-volid",
                "cidata",
                "-joliet",
                "-rock",
                str(d / "user-data"),
                str(d / "meta-data"),
            ],
            capture_output=True,
            text=True,
        )
        if p.returncode != 0 or not out.exists():
            raise SeedError(f"{Path(cmd[0]).name} failed: {p.stderr.strip()[-500:]}")
        return out.read_bytes()

"""Contextualization through guestinfo: `user_data` and `ssh_key` reach the guest as the
extraConfig keys cloud-init's VMware datasource reads (guestinfo.metadata, guestinfo.userdata,
each with its `.encoding`: base64).

Pure functions over the compute's attributes; the backend puts the keys in the VM's config.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

USERDATA_KEY = "occi.compute.userdata"
SSH_KEY = "occi.credentials.ssh.publickey"


def wanted(attributes: Mapping[str, Any]) -> bool:
    """Whether the compute asks for contextualization."""
    return bool(attributes.get(USERDATA_KEY) or attributes.get(SSH_KEY))


def user_data(value: Any) -> bytes | None:
    """occi.compute.userdata (Base64 by OCCI; plain text accepted) as bytes."""
    if not value:
        return None
    text = str(value).strip()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode()


def ssh_keys(attributes: Mapping[str, Any]) -> list[str]:
    return [k.strip() for k in str(attributes.get(SSH_KEY) or "").splitlines() if k.strip()]


def extra_config(entity_id: str, name: str, attributes: Mapping[str, Any]) -> dict[str, str]:
    """The guestinfo keys for a compute: metadata (instance id, hostname, public keys) and
    user data (the decoded occi.compute.userdata, else a #cloud-config with the keys)."""
    if not wanted(attributes):
        return {}
    keys = ssh_keys(attributes)
    hostname = str(attributes.get("occi.compute.hostname") or "") or name
    metadata: dict[str, Any] = {"instance-id": entity_id, "local-hostname": hostname}
    if keys:
        metadata["public-keys"] = keys
    data = user_data(attributes.get(USERDATA_KEY))
    if data is None:
        data = ("#cloud-config\n" + json.dumps({"ssh_authorized_keys": keys}) + "\n").encode()
    return {
        "guestinfo.metadata": base64.b64encode(json.dumps(metadata).encode()).decode(),
        "guestinfo.metadata.encoding": "base64",
        "guestinfo.userdata": base64.b64encode(data).decode(),
        "guestinfo.userdata.encoding": "base64",
    }

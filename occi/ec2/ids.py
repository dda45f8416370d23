"""EC2 ids of what the service holds, and the one table of EC2 states from OCCI states.

Ids are stable and derived, never stored: an instance is `i-` and a volume `vol-` followed by
the 32 hex digits of its entity's UUID (the id OCCI shows, without dashes); an entity whose id
is not a UUID (chosen by an OCCI client's PUT) gets 17 hex digits of the SHA-256 of its id, found
again by comparing. An image is `ami-` and 17 hex digits of the SHA-256 of its os_tpl mixin's
type identifier. Pure functions: no HTTP, no SQL.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

INSTANCE, VOLUME, IMAGE = "i-", "vol-", "ami-"
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX17 = re.compile(r"[0-9a-f]{17}")


def _hashed(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:17]


def ec2_id(prefix: str, entity_id: str) -> str:
    """The EC2 id of the entity `entity_id` (prefix INSTANCE or VOLUME)."""
    try:
        parsed = uuid.UUID(entity_id)
    except ValueError:
        return prefix + _hashed(entity_id)
    if str(parsed) != entity_id.lower():
        return prefix + _hashed(entity_id)
    return prefix + parsed.hex


def well_formed(prefix: str, value: str) -> bool:
    """Whether `value` has the shape of one of this server's ids with `prefix`."""
    if not value.startswith(prefix):
        return False
    rest = value[len(prefix) :]
    return bool(_HEX32.fullmatch(rest) or _HEX17.fullmatch(rest))


def entity_uuid(prefix: str, value: str) -> str | None:
    """The entity id an EC2 id of the UUID form names (None for the hashed form)."""
    rest = value[len(prefix) :]
    return str(uuid.UUID(hex=rest)) if _HEX32.fullmatch(rest) else None


def image_id(mixin_id: str) -> str:
    """The EC2 id of an os_tpl mixin (its type identifier)."""
    return IMAGE + _hashed(mixin_id)


def random_id(prefix: str) -> str:
    """A fresh id for what has no entity (reservations, key pairs): 17 hex digits."""
    return prefix + uuid.uuid4().hex[:17]


# ---------------------------------------------------------------------------------- states
@dataclass(frozen=True)
class State:
    code: int
    name: str


PENDING, RUNNING, SHUTTING_DOWN = (
    State(0, "pending"),
    State(16, "running"),
    State(32, "shutting-down"),
)
TERMINATED, STOPPING, STOPPED = State(48, "terminated"), State(64, "stopping"), State(80, "stopped")

#: the OCCI compute state -> EC2's instance state, when no work is under way
COMPUTE_STATES: Mapping[str, State] = {
    "active": RUNNING,
    "inactive": STOPPED,
    "suspended": STOPPED,
    "error": TERMINATED,  # EC2's answer to a failed launch (with Server.InternalError)
}
#: the state message the service notes while work is queued -> EC2's state meanwhile
UNDER_WAY: Mapping[str, State] = {
    "creating": PENDING,
    "deleting": SHUTTING_DOWN,
    "start requested": PENDING,
    "stop requested": STOPPING,
    "suspend requested": STOPPING,
    "restart requested": RUNNING,
}


#: work queued for a compute (occi.service Reads.queued_work) -> EC2's state meanwhile
QUEUED: Mapping[str, State] = {
    "create": PENDING,
    "start": PENDING,
    "stop": STOPPING,
    "suspend": STOPPING,
    "restart": RUNNING,
}


def instance_state(attributes: Mapping[str, Any], queued: Sequence[str] = ()) -> State:
    """The EC2 state of a compute from its attributes and the work queued for it (the last
    that changes its state wins; a deletion over all); unknown states are pending."""
    if "delete" in queued:
        return SHUTTING_DOWN
    for work in reversed(queued):
        if work in QUEUED:
            return QUEUED[work]
    message = str(attributes.get("occi.compute.state.message") or "")
    if message in UNDER_WAY:
        return UNDER_WAY[message]
    return COMPUTE_STATES.get(str(attributes.get("occi.compute.state")), PENDING)


def volume_state(attributes: Mapping[str, Any], attached: bool, queued: Sequence[str] = ()) -> str:
    """available, in-use, creating, deleting or error for a storage."""
    message = str(attributes.get("occi.storage.state.message") or "")
    if "delete" in queued or message == "deleting":
        return "deleting"
    if "create" in queued or message == "creating":
        return "creating"
    if attributes.get("occi.storage.state") == "error":
        return "error"
    return "in-use" if attached else "available"

"""The categories of OCCI 1.2 Core (GFD.221), Infrastructure (GFD.224) and CRTP 1.1 (GFD.222).

Static data only: the registry (occi.registry) adds provider templates and user mixins to it.
Defaults follow NOTES.md section 2 and DESIGN.md: whatever the server or the hypervisor can
assign has a default, so `required` marks only what the client must supply.
"""

from __future__ import annotations

from dataclasses import replace

from occi.model import (
    ARRAY,
    BOOLEAN,
    CORE,
    ENUM,
    INFRA,
    INTEGER,
    NUMBER,
    STRING,
    Action,
    AttributeDef,
    Kind,
    Mixin,
    attrs,
)

A = AttributeDef
STATE = "state"

# ---------------------------------------------------------------- Core
ENTITY = Kind(
    CORE,
    "entity",
    "Entity",
    attrs(
        A("occi.core.id", STRING, mutable=False, description="Unique identifier of the entity"),
        A("occi.core.title", STRING, description="Display name of the entity"),
    ),
)
RESOURCE = Kind(
    CORE,
    "resource",
    "Resource",
    attrs(A("occi.core.summary", STRING, description="Short summary of the resource")),
    parent=ENTITY,
    location="/resource/",
)
LINK = Kind(
    CORE,
    "link",
    "Link",
    attrs(
        A("occi.core.source", STRING, required=True, description="Location of the source resource"),
        A("occi.core.target", STRING, required=True, description="Location of the target resource"),
        A("occi.core.source.kind", STRING, description="Kind of the source resource"),
        A("occi.core.target.kind", STRING, description="Kind of the target resource"),
    ),
    parent=ENTITY,
    location="/link/",
)


def _action(kind_term: str, term: str, title: str, *params: AttributeDef) -> Action:
    return Action(f"{INFRA[:-1]}/{kind_term}/action#", term, title, attrs(*params))


# ---------------------------------------------------------------- Compute
COMPUTE_STATES = ("active", "inactive", "suspended", "error")
START = _action("compute", "start", "Start the compute instance")
STOP = _action(
    "compute",
    "stop",
    "Stop the compute instance",
    A(
        "method",
        ENUM,
        enum=("graceful", "acpioff", "poweroff"),
        default="graceful",
        description="How to stop: graceful (guest shutdown), acpioff (ACPI power button), poweroff (power cut)",
    ),
)
RESTART = _action(
    "compute",
    "restart",
    "Restart the compute instance",
    A(
        "method",
        ENUM,
        enum=("graceful", "warm", "cold"),
        default="graceful",
        description="How to restart: graceful (guest reboot), warm (soft reset), cold (power cycle)",
    ),
)
SUSPEND = _action(
    "compute",
    "suspend",
    "Suspend the compute instance",
    A(
        "method",
        ENUM,
        enum=("hibernate", "suspend"),
        default="suspend",
        description="suspend keeps memory in RAM; hibernate writes it to disk",
    ),
)
SAVE = _action(
    "compute",
    "save",
    "Save the compute instance as a new OS template",
    A(
        "method",
        ENUM,
        enum=("hot", "deferred"),
        default="hot",
        description="hot saves a copy now; deferred saves when the instance stops",
    ),
    A("name", STRING, description="Name for the new OS template (the provider may choose another)"),
)
COMPUTE = Kind(
    INFRA,
    "compute",
    "Compute Resource",
    attrs(
        A(
            "occi.compute.architecture",
            ENUM,
            enum=("x86", "x64"),
            default="x64",
            description="CPU architecture of the instance",
        ),
        A(
            "occi.compute.cores",
            INTEGER,
            default=1,
            minimum=1,
            maximum=1024,
            description="Number of virtual CPU cores assigned to the instance",
        ),
        A(
            "occi.compute.hostname",
            STRING,
            pattern=r"[A-Za-z0-9]([A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?",
            description="Fully qualified DNS hostname for the instance",
        ),
        A(
            "occi.compute.share",
            INTEGER,
            minimum=0,
            description="Relative number of CPU shares for the instance",
        ),
        A(
            "occi.compute.memory",
            NUMBER,
            default=1.0,
            minimum=0.0,
            description="Maximum RAM in gigabytes allocated to the instance",
        ),
        A(
            "occi.compute.state",
            ENUM,
            mutable=False,
            enum=COMPUTE_STATES,
            default="inactive",
            description="Current state of the instance",
        ),
        A(
            "occi.compute.state.message",
            STRING,
            mutable=False,
            description="Human-readable explanation of the current instance state",
        ),
    ),
    parent=RESOURCE,
    actions=(START, STOP, RESTART, SUSPEND, SAVE),
    location="/compute/",
)

# ---------------------------------------------------------------- Network
UP = _action("network", "up", "Bring the network up")
DOWN = _action("network", "down", "Take the network down")
LINK_STATES = ("active", "inactive", "error")
NETWORK = Kind(
    INFRA,
    "network",
    "Network Resource",
    attrs(
        A(
            "occi.network.vlan",
            INTEGER,
            minimum=0,
            maximum=4095,
            description="802.1q VLAN identifier",
        ),
        A(
            "occi.network.label",
            STRING,
            pattern=r"[A-Za-z0-9][A-Za-z0-9_.\-]*",
            description="Tag-based VLAN label, e.g. external-dmz",
        ),
        A(
            "occi.network.state",
            ENUM,
            mutable=False,
            enum=LINK_STATES,
            default="inactive",
            description="Current state of the network",
        ),
        A(
            "occi.network.state.message",
            STRING,
            mutable=False,
            description="Human-readable explanation of the current network state",
        ),
    ),
    parent=RESOURCE,
    actions=(UP, DOWN),
    location="/network/",
)
IP_CIDR = r"[0-9A-Fa-f:.]+/[0-9]{1,3}"
IP_ADDR = r"[0-9A-Fa-f:.]+"
IPNETWORK = Mixin(
    INFRA[:-1] + "/network#",
    "ipnetwork",
    "IP Networking Mixin",
    attrs(
        A(
            "occi.network.address",
            STRING,
            pattern=IP_CIDR,
            description="IP network address in CIDR notation",
        ),
        A("occi.network.gateway", STRING, pattern=IP_ADDR, description="IP address of the gateway"),
        A(
            "occi.network.allocation",
            ENUM,
            enum=("dynamic", "static"),
            default="dynamic",
            description="Address allocation: dynamic (DHCP) or static",
        ),
    ),
    applies=(NETWORK.id,),
    location="/mixin/ipnetwork/",
)

# ---------------------------------------------------------------- Storage
STORAGE_STATES = ("online", "offline", "error")
ONLINE = _action("storage", "online", "Bring the storage online")
OFFLINE = _action("storage", "offline", "Take the storage offline")
STORAGE = Kind(
    INFRA,
    "storage",
    "Storage Resource",
    attrs(
        A(
            "occi.storage.size",
            NUMBER,
            required=True,
            minimum=0.0,
            description="Storage size in gigabytes; update it to resize",
        ),
        A(
            "occi.storage.state",
            ENUM,
            mutable=False,
            enum=STORAGE_STATES,
            default="offline",
            description="Current state of the storage",
        ),
        A(
            "occi.storage.state.message",
            STRING,
            mutable=False,
            description="Human-readable explanation of the current storage state",
        ),
    ),
    parent=RESOURCE,
    actions=(ONLINE, OFFLINE),
    location="/storage/",
)

# ---------------------------------------------------------------- Links
NETWORKINTERFACE = Kind(
    INFRA,
    "networkinterface",
    "NetworkInterface Link",
    attrs(
        A(
            "occi.networkinterface.interface",
            STRING,
            mutable=False,
            description="Identifier of the interface, e.g. eth0 (assigned by the provider)",
        ),
        A(
            "occi.networkinterface.mac",
            STRING,
            pattern=r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}",
            description="MAC address of the interface (assigned by the provider when not given)",
        ),
        A(
            "occi.networkinterface.state",
            ENUM,
            mutable=False,
            enum=LINK_STATES,
            default="inactive",
            description="Current state of the interface",
        ),
        A(
            "occi.networkinterface.state.message",
            STRING,
            mutable=False,
            description="Human-readable explanation of the current interface state",
        ),
    ),
    parent=LINK,
    location="/link/networkinterface/",
)
IPNETWORKINTERFACE = Mixin(
    INFRA[:-1] + "/networkinterface#",
    "ipnetworkinterface",
    "IP Network Interface Mixin",
    attrs(
        A(
            "occi.networkinterface.address",
            STRING,
            pattern=IP_ADDR,
            description="IP address of the interface",
        ),
        A(
            "occi.networkinterface.gateway",
            STRING,
            pattern=IP_ADDR,
            description="IP address of the gateway",
        ),
        A(
            "occi.networkinterface.allocation",
            ENUM,
            enum=("dynamic", "static"),
            default="dynamic",
            description="Address allocation: dynamic (DHCP) or static",
        ),
    ),
    applies=(NETWORKINTERFACE.id,),
    location="/mixin/ipnetworkinterface/",
)
STORAGELINK = Kind(
    INFRA,
    "storagelink",
    "StorageLink Link",
    attrs(
        A(
            "occi.storagelink.deviceid",
            STRING,
            description="Device identifier inside the compute, e.g. vdb (assigned when not given)",
        ),
        A(
            "occi.storagelink.mountpoint",
            STRING,
            description="Mount point inside the compute, e.g. /data",
        ),
        A(
            "occi.storagelink.state",
            ENUM,
            mutable=False,
            enum=LINK_STATES,
            default="inactive",
            description="Current state of the attachment",
        ),
        A(
            "occi.storagelink.state.message",
            STRING,
            mutable=False,
            description="Human-readable explanation of the current attachment state",
        ),
    ),
    parent=LINK,
    location="/link/storagelink/",
)

# ---------------------------------------------------------------- Templates and contextualisation
OS_TPL = Mixin(INFRA, "os_tpl", "OS Template", location="/mixin/os_tpl/")
RESOURCE_TPL = Mixin(INFRA, "resource_tpl", "Resource Template", location="/mixin/resource_tpl/")
SSH_KEY = Mixin(
    INFRA[:-1] + "/credentials#",
    "ssh_key",
    "SSH Key Credentials",
    attrs(
        A(
            "occi.credentials.ssh.publickey",
            STRING,
            required=True,
            description="SSH public key to install for the default user",
        ),
    ),
    applies=(COMPUTE.id,),
    location="/mixin/ssh_key/",
)
USER_DATA = Mixin(
    INFRA[:-1] + "/compute#",
    "user_data",
    "Contextualization data",
    attrs(
        A(
            "occi.compute.userdata",
            STRING,
            required=True,
            description="Contextualisation data (cloud-init user data), Base64-encoded",
        ),
    ),
    applies=(COMPUTE.id,),
    location="/mixin/user_data/",
)

# CRTP 1.1 (GFD.222): resource templates with cores, memory and ephemeral storage.
CRTP_SCHEME = INFRA[:-1] + "/compute/template/1.1#"
CRTP_ATTRS = attrs(
    A(
        "occi.compute.ephemeral_storage.size",
        NUMBER,
        mutable=False,
        description="Ephemeral storage size in gigabytes",
    ),
    A(
        "occi.compute.ephemeral_storage.deviceid",
        STRING,
        description="Device identifier of the ephemeral storage",
    ),
)


def crtp_template(term: str, title: str, cores: int, memory: float, ephemeral: float) -> Mixin:
    base = COMPUTE.attributes
    return Mixin(
        CRTP_SCHEME,
        term,
        title,
        attrs(
            replace(base["occi.compute.cores"], default=cores),
            replace(base["occi.compute.memory"], default=memory),
            replace(CRTP_ATTRS["occi.compute.ephemeral_storage.size"], default=ephemeral),
        ),
        depends=(RESOURCE_TPL.id,),
        applies=(COMPUTE.id,),
        location=f"/mixin/resource_tpl/{term}/",
    )


CRTP_TEMPLATES = (
    crtp_template("small", "Small instance: 1 core, 1 GB RAM, 10 GB disk", 1, 1.0, 10.0),
    crtp_template("medium", "Medium instance: 2 cores, 2 GB RAM, 20 GB disk", 2, 2.0, 20.0),
    crtp_template("large", "Large instance: 4 cores, 4 GB RAM, 40 GB disk", 4, 4.0, 40.0),
    crtp_template("mem_small", "Memory small: 1 core, 4 GB RAM, 10 GB disk", 1, 4.0, 10.0),
    crtp_template("mem_medium", "Memory medium: 2 cores, 8 GB RAM, 20 GB disk", 2, 8.0, 20.0),
    crtp_template("mem_large", "Memory large: 4 cores, 16 GB RAM, 40 GB disk", 4, 16.0, 40.0),
)

KINDS = (ENTITY, RESOURCE, LINK, COMPUTE, STORAGE, NETWORK, NETWORKINTERFACE, STORAGELINK)
MIXINS = (IPNETWORK, IPNETWORKINTERFACE, OS_TPL, RESOURCE_TPL, SSH_KEY, USER_DATA)
ACTIONS = tuple(a for k in KINDS for a in k.actions)

# Legacy (OCCI 1.1 and peers') attribute names accepted on input, rendered under their 1.2 name.
LEGACY_ATTRIBUTES = {
    "occi.compute.user_data": "occi.compute.userdata",
    "occi.credentials.ssh_key": "occi.credentials.ssh.publickey",
    "occi.credentials.ssh.public_key": "occi.credentials.ssh.publickey",
}
# occi.compute.speed (GHz) was removed in 1.2 but every peer still sends it: accepted, stored.
COMPUTE_SPEED = A(
    "occi.compute.speed",
    NUMBER,
    minimum=0.0,
    description="CPU clock frequency in gigahertz (OCCI 1.1; kept for compatibility)",
)

__all__ = [
    "ACTIONS",
    "KINDS",
    "MIXINS",
    "CRTP_TEMPLATES",
    "LEGACY_ATTRIBUTES",
    "COMPUTE_SPEED",
    "ENTITY",
    "RESOURCE",
    "LINK",
    "COMPUTE",
    "STORAGE",
    "NETWORK",
    "NETWORKINTERFACE",
    "STORAGELINK",
    "IPNETWORK",
    "IPNETWORKINTERFACE",
    "OS_TPL",
    "RESOURCE_TPL",
    "SSH_KEY",
    "USER_DATA",
    "START",
    "STOP",
    "RESTART",
    "SUSPEND",
    "SAVE",
    "UP",
    "DOWN",
    "ONLINE",
    "OFFLINE",
    "STATE",
    "ARRAY",
    "BOOLEAN",
]

"""The simulator's platform tables (prefixed `sim_`): what its pretend hypervisor holds.

Only the simulator touches these; they live in the server's database so that every worker
process, and every server on the same database, sees one platform.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

#: One row per platform object: a virtual machine, a volume or a virtual network.
machines = Table(
    "sim_machines",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("kind", String(16), nullable=False),  # compute | storage | network
    Column("state", String(16), nullable=False),
    Column("cores", Integer),
    Column("memory", Float),
    Column("size", Float),
    Column("details", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: One row per device plugged into a compute: a NIC (networkinterface) or a disk (storagelink).
attachments = Table(
    "sim_attachments",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("machine", String(255), nullable=False, index=True),
    Column("kind", String(8), nullable=False),  # nic | disk
    Column("target", String(255)),  # platform name of the network/volume; None when external
    Column("mac", String(17)),
    Column("device", String(64), nullable=False),  # eth0, vdb, ...
    Column("state", String(16), nullable=False),
    UniqueConstraint("machine", "device", name="uq_sim_attachments_machine_device"),
)

#: Images saved from computes (the `save` action); built-in images are not stored.
images = Table(
    "sim_images",
    metadata,
    Column("term", String(255), primary_key=True),
    Column("title", String(512)),
    Column("created_from", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Simulated hosts switched off (`occi-simulator hosts off NAME`, backends.simulator.power):
#: such a host does not answer host_capacity, nor any operation on a machine placed on it.
hosts_off = Table(
    "sim_hosts_off",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False),
)

#: Long platform tasks (`simulator_pending` seconds > 0): an operation answers Pending with a
#: handle naming its row, and `poll` carries it out once `due_at` (epoch seconds) has passed,
#: keeping what it answered (`outcome`, or `error`) so that polling again answers the same.
tasks = Table(
    "sim_tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("machine", String(255), nullable=False, index=True),
    Column("operation", String(32), nullable=False),  # create | migrate | an action's term
    Column("params", JSON, nullable=False, default=dict),
    Column("due_at", Float, nullable=False),
    Column("outcome", JSON),  # the Outcome once done: attributes, platform_ref, saved image
    Column("error", String(1024)),  # the fault it ended with: "Class: message"
    Column("created", DateTime(timezone=True), nullable=False),
)

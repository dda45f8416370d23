"""The `compute`, `storage`, `network` and `link` command groups: each kind's create, with
names for templates, images and zones, and its actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from click.shell_completion import CompletionItem

from occi.client import wait
from occi.client.failures import UsageFailure
from occi.client.names import INFRA, cid, find_entity, location_of
from occi.client.resources import (
    act,
    action_command,
    base64_text,
    create_entity,
    parse_attributes,
    read_value,
    resource_group,
    show,
    zone_mixins,
)
from occi.client.session import Session, output_options, pass_session, wait_options
from occi.client.views import category_row

SSH_KEY = INFRA[:-1] + "/credentials#ssh_key"
USER_DATA = INFRA[:-1] + "/compute#user_data"

compute = resource_group("compute", "Virtual machines.")
storage = resource_group("storage", "Volumes.")
network = resource_group("network", "Networks.")
link = resource_group("link", "Network interfaces and storage links between resources.")


def _common(f: Any) -> Any:
    options: list[Callable[[Any], Any]] = [
        click.option("--title", "--name", "title", help="The entity's title."),
        click.option("--summary", help="A summary."),
        click.option(
            "--zone",
            metavar="ZONE",
            help="Availability zone (its name).",
            shell_complete=_names_of("zone"),
        ),
        click.option("--mixin", "mixins", multiple=True, metavar="NAME", help="A mixin to apply."),
        click.option(
            "-a",
            "--attribute",
            "attributes",
            multiple=True,
            metavar="NAME=VALUE",
            help="Any attribute (VALUE @FILE reads a file).",
        ),
        wait_options,
        output_options,
        pass_session,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _names_of(group: str) -> Callable[..., list[CompletionItem]]:
    """Shell completion of a mixin group's terms, asked of the server of the profile in effect
    (nothing when it cannot be reached: completion never fails)."""

    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
        try:
            session = ctx.find_object(Session) or Session()
            found = session.catalog().in_group(group)
            session.close()
        except Exception:  # noqa: BLE001 - a shell asking must never see a traceback
            return []
        terms = sorted(str(m.get("term")) for m in found)
        return [CompletionItem(t) for t in terms if t.startswith(incomplete)]

    return complete


def _doc(title: str | None, summary: str | None, attributes: tuple[str, ...]) -> dict[str, Any]:
    attrs = parse_attributes(attributes)
    if title is not None:
        attrs["occi.core.title"] = title
    if summary is not None:
        attrs["occi.core.summary"] = summary
    return {"mixins": [], "attributes": attrs, "links": []}


@compute.command("create")
@click.option(
    "--image",
    metavar="IMAGE",
    help="OS template: name, title or id (discover lists them).",
    shell_complete=_names_of("image"),
)
@click.option(
    "--size",
    metavar="TEMPLATE",
    help="Resource template: small, medium, ...",
    shell_complete=_names_of("template"),
)
@click.option("--cores", type=click.IntRange(1, 1 << 20), help="Cores (without --size).")
@click.option("--memory", type=click.FloatRange(0, 1 << 30), help="Memory in GB.")
@click.option("--hostname", help="The machine's host name.")
@click.option("--ssh-key", metavar="KEY|@FILE", help="An SSH public key, or @FILE holding it.")
@click.option("--user-data", metavar="TEXT|@FILE", help="cloud-init user data, or @FILE.")
@click.option("--network", "networks", multiple=True, metavar="NETWORK", help="Attach a network.")
@click.option("--storage", "storages", multiple=True, metavar="STORAGE", help="Attach a volume.")
@click.option("--start", is_flag=True, help="Start it once created.")
@_common
def compute_create(
    session: Session,
    title: str | None,
    summary: str | None,
    zone: str | None,
    mixins: tuple[str, ...],
    attributes: tuple[str, ...],
    wait_: bool,
    timeout: float,
    image: str | None,
    size: str | None,
    cores: int | None,
    memory: float | None,
    hostname: str | None,
    ssh_key: str | None,
    user_data: str | None,
    networks: tuple[str, ...],
    storages: tuple[str, ...],
    start: bool,
) -> None:
    """Create a virtual machine: `occi compute create --image debian12 --size medium`."""
    catalog = session.catalog()
    doc = _doc(title, summary, attributes)
    attrs = doc["attributes"]
    if image:
        doc["mixins"].append(cid(catalog.resolve(image, "image")))
    if size:
        doc["mixins"].append(cid(catalog.resolve(size, "template")))
    doc["mixins"] += zone_mixins(session, zone, mixins)
    for name, value in (
        ("occi.compute.cores", cores),
        ("occi.compute.memory", memory),
        ("occi.compute.hostname", hostname),
    ):
        if value is not None:
            attrs[name] = value
    if ssh_key:
        doc["mixins"].append(SSH_KEY)
        attrs["occi.credentials.ssh.publickey"] = read_value(ssh_key, "--ssh-key").strip()
    if user_data:
        doc["mixins"].append(USER_DATA)
        attrs["occi.compute.userdata"] = base64_text(read_value(user_data, "--user-data"))
    api = session.api()
    for refs, term, link_kind in (
        (networks, "network", "networkinterface"),
        (storages, "storage", "storagelink"),
    ):
        for ref in refs:
            target = find_entity(api, term, ref, catalog.kind_location(term))
            doc["links"].append(
                {
                    "kind": INFRA + link_kind,
                    "target": {
                        "location": _path(session, location_of(target)),
                        "kind": INFRA + term,
                    },
                }
            )
    created = create_entity(session, "compute", doc, wait_, timeout)
    if start:
        created = act(session, "compute", location_of(created), "start", {}, wait_, timeout)
    show(session, [created], "compute", single=True)


def _path(session: Session, location: str) -> str:
    """A location below the server's URL as a path (how OCCI bodies carry them)."""
    base = session.profile().url
    return location[len(base) :] if location.startswith(base + "/") else location


for _term, _help in (
    ("start", "Start the machine."),
    ("stop", "Stop the machine."),
    ("restart", "Restart the machine."),
    ("suspend", "Suspend the machine."),
):
    action_command(compute, "compute", _term, _help)


@compute.command("save")
@click.argument("ref")
@click.option("--image-name", "--name", "name", help="The new image's name.")
@wait_options
@output_options
@pass_session
def compute_save(session: Session, ref: str, name: str | None, wait_: bool, timeout: float) -> None:
    """Save the machine's disk as a new image (an OS template mixin) and show the image.

    A server that answers before the image exists answers with the machine: with --wait the
    image is then found among the images discovered once the machine has settled."""
    before = {cid(m) for m in session.catalog().in_group("image")}
    result = act(session, "compute", ref, "save", {"name": name} if name else {}, wait_, timeout)
    if "kind" in result and wait_:
        session.api().forget_categories()
        new = [m for m in session.catalog().in_group("image") if cid(m) not in before]
        if len(new) == 1:
            result = new[0]
    if "kind" in result:
        show(session, [result], "compute", single=True)
        return
    row = category_row(result, "mixin")
    session.output.emit([row], ["id", "term", "title", "location"], docs=result, single=True)


@compute.command("resize")
@click.argument("ref")
@click.option(
    "--size",
    metavar="TEMPLATE",
    help="A resource template (small, medium, ...).",
    shell_complete=_names_of("template"),
)
@click.option("--cores", type=click.IntRange(1, 1 << 20))
@click.option("--memory", type=click.FloatRange(0, 1 << 30), help="GB.")
@wait_options
@output_options
@pass_session
def compute_resize(
    session: Session,
    ref: str,
    size: str | None,
    cores: int | None,
    memory: float | None,
    wait_: bool,
    timeout: float,
) -> None:
    """Change the machine's size: another template, or cores and memory."""
    if not (size or cores or memory is not None):
        raise UsageFailure("give --size, or --cores and/or --memory")
    catalog = session.catalog()
    entity = find_entity(session.api(), "compute", ref, catalog.kind_location("compute"))
    doc: dict[str, Any] = {"attributes": {}}
    if size:
        doc["mixins"] = [cid(catalog.resolve(size, "template"))]
    if cores:
        doc["attributes"]["occi.compute.cores"] = cores
    if memory is not None:
        doc["attributes"]["occi.compute.memory"] = memory
    updated = session.api().update(location_of(entity), doc)
    updated.setdefault("location", location_of(entity))
    if wait_:
        updated = wait.wait_for(session.api(), updated, [], timeout, "compute resize")
    show(session, [updated], "compute", single=True)


@storage.command("create")
@click.option("--size", "size_gb", type=click.FloatRange(0, 1 << 40), required=True, help="GB.")
@_common
def storage_create(
    session: Session,
    title: str | None,
    summary: str | None,
    zone: str | None,
    mixins: tuple[str, ...],
    attributes: tuple[str, ...],
    wait_: bool,
    timeout: float,
    size_gb: float,
) -> None:
    """Create a volume: `occi storage create --size 10 --name data`."""
    doc = _doc(title, summary, attributes)
    doc["attributes"]["occi.storage.size"] = size_gb
    doc["mixins"] += zone_mixins(session, zone, mixins)
    show(session, [create_entity(session, "storage", doc, wait_, timeout)], "storage", True)


for _term, _help in (("online", "Bring the volume online."), ("offline", "Take it offline.")):
    action_command(storage, "storage", _term, _help)


@network.command("create")
@click.option("--address", metavar="CIDR", help="IP network, e.g. 10.0.0.0/24 (ipnetwork).")
@click.option("--gateway", metavar="IP", help="Its gateway.")
@_common
def network_create(
    session: Session,
    title: str | None,
    summary: str | None,
    zone: str | None,
    mixins: tuple[str, ...],
    attributes: tuple[str, ...],
    wait_: bool,
    timeout: float,
    address: str | None,
    gateway: str | None,
) -> None:
    """Create a network: `occi network create --name lan --address 10.0.0.0/24`."""
    doc = _doc(title, summary, attributes)
    doc["mixins"] += zone_mixins(session, zone, mixins)
    if address or gateway:
        doc["mixins"].append(INFRA[:-1] + "/network#ipnetwork")
        if address:
            doc["attributes"]["occi.network.address"] = address
        if gateway:
            doc["attributes"]["occi.network.gateway"] = gateway
    show(session, [create_entity(session, "network", doc, wait_, timeout)], "network", True)


for _term, _help in (("up", "Bring the network up."), ("down", "Take the network down.")):
    action_command(network, "network", _term, _help)


@link.command("create")
@click.option("--source", required=True, metavar="COMPUTE", help="The machine.")
@click.option("--network", "to_network", metavar="NETWORK", help="Attach this network.")
@click.option("--storage", "to_storage", metavar="STORAGE", help="Attach this volume.")
@click.option("--mixin", "mixins", multiple=True, metavar="NAME")
@click.option("-a", "--attribute", "attributes", multiple=True, metavar="NAME=VALUE")
@wait_options
@output_options
@pass_session
def link_create(
    session: Session,
    source: str,
    to_network: str | None,
    to_storage: str | None,
    mixins: tuple[str, ...],
    attributes: tuple[str, ...],
    wait_: bool,
    timeout: float,
) -> None:
    """Attach a network (networkinterface) or a volume (storagelink) to a machine."""
    if bool(to_network) == bool(to_storage):
        raise UsageFailure("give one of --network or --storage")
    catalog = session.catalog()
    api = session.api()
    term, ref = ("network", to_network) if to_network else ("storage", to_storage)
    kind = "networkinterface" if to_network else "storagelink"
    src = find_entity(api, "compute", source, catalog.kind_location("compute"))
    tgt = find_entity(api, term, str(ref), catalog.kind_location(term))
    doc: dict[str, Any] = {
        "kind": INFRA + kind,
        "mixins": [cid(catalog.resolve(m, "")) for m in mixins],
        "attributes": parse_attributes(attributes),
        "source": {"location": _path(session, location_of(src)), "kind": INFRA + "compute"},
        "target": {"location": _path(session, location_of(tgt)), "kind": INFRA + term},
    }
    created = api.create(catalog.kind_location(kind), doc)
    if wait_:
        created = wait.wait_for(api, created, [], timeout, f"{kind} create")
    show(session, [created], "link", single=True)

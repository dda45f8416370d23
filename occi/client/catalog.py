"""`occi discover` (what the server offers: kinds, templates, images, zones, mixins, actions) and
`occi mixin list|create|delete|associate` (the project's own mixins and tags)."""

from __future__ import annotations

from typing import Any

import click

from occi.client.failures import UsageFailure
from occi.client.names import GROUPS, cid, find_entity, group_of, location_of
from occi.client.session import Session, output_options, pass_session
from occi.client.views import COLUMNS, category_row

#: the scheme of mixins made with `occi mixin create` when no --scheme is given
USER_SCHEME = "http://occi.client.local/tag#"
WHAT = ("all", "kinds", "actions", "templates", "images", "zones", "mixins")


@click.command()
@click.argument("what", type=click.Choice(WHAT), default="all")
@output_options
@pass_session
def discover(session: Session, what: str) -> None:
    """What the server offers: kinds, templates, images, zones, mixins and actions.

    json and yaml print the query interface as the server rendered it (with WHAT: that part)."""
    cats = session.api().categories()
    rows: list[dict[str, Any]] = []
    if what in ("all", "kinds"):
        rows += [category_row(k, "kind") for k in cats["kinds"]]
    if what in ("all", "actions"):
        rows += [category_row(a, "action") for a in cats["actions"]]
    for group in GROUPS:
        if what in ("all", group + "s"):
            rows += [category_row(m, "mixin") for m in cats["mixins"] if group_of(m) == group]
    docs: Any = cats
    if what == "kinds" or what == "actions":
        docs = cats[what]
    elif what != "all":
        docs = [m for m in cats["mixins"] if group_of(m) + "s" == what]
    session.output.emit(rows, ["group", "term", "title", "location"], docs=docs)


@click.group()
def mixin() -> None:
    """Mixins: list them; define, remove and associate the project's own."""


@mixin.command("list")
@click.option("--group", type=click.Choice(GROUPS), help="Only templates, images, zones or mixins.")
@output_options
@pass_session
def mixin_list(session: Session, group: str | None) -> None:
    """List the mixins the server offers (and the project's own)."""
    found = session.api().categories()["mixins"]
    if group:
        found = [m for m in found if group_of(m) == group]
    session.output.emit([category_row(m, "mixin") for m in found], COLUMNS["mixin"], docs=found)


@mixin.command("create")
@click.argument("term")
@click.option("--scheme", default=USER_SCHEME, show_default=True)
@click.option("--title")
@click.option("--location", metavar="PATH", help="Its collection (default /mixin/<term>/).")
@click.option("--applies", multiple=True, metavar="KIND", help="A kind it applies to.")
@output_options
@pass_session
def mixin_create(
    session: Session,
    term: str,
    scheme: str,
    title: str | None,
    location: str | None,
    applies: tuple[str, ...],
) -> None:
    """Define a mixin of the project (a tag its entities can carry)."""
    if not scheme.endswith("#"):
        raise UsageFailure("--scheme must end with '#'")
    catalog = session.catalog()
    doc: dict[str, Any] = {
        "term": term,
        "scheme": scheme,
        "location": location or f"/mixin/{term}/",
        "attributes": {},
        "actions": [],
        "depends": [],
        "applies": [cid(catalog.kind(k)) for k in applies],
    }
    if title:
        doc["title"] = title
    session.api().define_mixins([doc])
    made = session.catalog().resolve(scheme + term, "")
    session.output.emit([category_row(made, "mixin")], COLUMNS["mixin"], docs=made, single=True)


@mixin.command("delete")
@click.argument("name")
@pass_session
def mixin_delete(session: Session, name: str) -> None:
    """Remove a mixin of the project (or an image it saved)."""
    found = session.catalog().resolve(name, "")
    session.api().remove_mixin(found)
    click.echo(f"deleted {cid(found)}", err=True)


@mixin.command("associate")
@click.argument("name")
@click.argument("refs", nargs=-1, required=True)
@click.option("--kind", "term", default="compute", show_default=True, help="The entities' kind.")
@click.option("--remove", is_flag=True, help="Dissociate them instead.")
@pass_session
def mixin_associate(
    session: Session, name: str, refs: tuple[str, ...], term: str, remove: bool
) -> None:
    """Associate entities (ids, locations or titles) with a mixin, or --remove them."""
    catalog = session.catalog()
    found = catalog.resolve(name, "")
    if not found.get("location"):
        raise UsageFailure(f"{cid(found)} has no location to associate entities with")
    path = catalog.kind_location(term)
    api = session.api()
    locations = [location_of(find_entity(api, term, ref, path)) for ref in refs]
    api.associate(str(found["location"]), locations, remove=remove)
    verb = "dissociated from" if remove else "associated with"
    click.echo(f"{len(locations)} {verb} {cid(found)}", err=True)

"""`occi compute|storage|network|link ...`: list, show, create, update, delete, and the kinds'
actions (compute start|stop|restart|suspend|save|resize, storage online|offline, network
up|down), with names resolved against the discovered categories."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click

from occi.client import wait
from occi.client.failures import UsageFailure
from occi.client.names import INFRA, cid, find_entity, location_of
from occi.client.session import Session, output_options, pass_session, wait_options
from occi.client.views import ALIASES, COLUMNS, entity_row

#: the most a file given with @ may hold (user data, keys)
MAX_FILE = 1 << 20


def read_value(value: str, what: str) -> str:
    """`@path` is the file's text (~ expanded), anything else the value itself."""
    if not value.startswith("@"):
        return value
    path = Path(value[1:]).expanduser()
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE + 1)
    except OSError as exc:
        raise UsageFailure(f"{what}: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE:
        raise UsageFailure(f"{what}: {path} is larger than {MAX_FILE} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageFailure(f"{what}: {path} is not UTF-8 text") from None


def parse_attributes(pairs: tuple[str, ...]) -> dict[str, Any]:
    """NAME=VALUE pairs; a value that reads as a JSON number or boolean is one."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageFailure(f"--attribute {pair!r}: write NAME=VALUE")
        out[name.strip()] = typed(read_value(value, f"--attribute {name}"))
    return out


def typed(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def show(session: Session, entities: list[dict[str, Any]], kind: str, single: bool) -> None:
    mixins = session.mixins_by_id()
    rows = [entity_row(e, mixins) for e in entities]
    docs: Any = entities[0] if single and entities else entities
    columns = COLUMNS.get(kind, COLUMNS["link"])
    if single and not session.output.columns and session.output.format in ("table", "csv"):
        columns = ["id", "title", "kind", "state", "message", "location"]
        columns += [c for c in COLUMNS.get(kind, []) if c not in columns]
        shown = {"occi.core.id", "occi.core.title"} | {ALIASES[c] for c in columns if c in ALIASES}
        for name in entities[0].get("attributes", {}) if entities else ():
            if name not in shown and not name.endswith((".state", ".state.message")):
                columns.append(name)
    session.output.emit(rows, columns, docs=docs, single=single)


def resource_group(term: str, help_text: str) -> click.Group:
    """list, show, update and delete of one kind (create and actions are added per kind)."""
    group = click.Group(term, help=help_text)

    @group.command("list")
    @click.option("--state", help="Only entities in this state.")
    @output_options
    @pass_session
    def list_(session: Session, state: str | None) -> None:
        """List the project's entities of this kind."""
        path = session.catalog().kind_location(term)
        found = session.api().collection(path)
        if state:
            found = [e for e in found if wait.state_of(e)[0] == state]
        show(session, found, term, single=False)

    @group.command("show")
    @click.argument("ref")
    @output_options
    @pass_session
    def show_(session: Session, ref: str) -> None:
        """Show one entity: REF is its id, location or title."""
        path = session.catalog().kind_location(term)
        show(session, [find_entity(session.api(), term, ref, path)], term, single=True)

    @group.command("update")
    @click.argument("ref")
    @click.option("--title", help="A new title.")
    @click.option("--summary", help="A new summary.")
    @click.option("-a", "--attribute", "attributes", multiple=True, metavar="NAME=VALUE")
    @click.option("--mixin", "mixins", multiple=True, metavar="NAME", help="Add a mixin.")
    @output_options
    @pass_session
    def update(
        session: Session,
        ref: str,
        title: str | None,
        summary: str | None,
        attributes: tuple[str, ...],
        mixins: tuple[str, ...],
    ) -> None:
        """Change attributes or add mixins (a partial update)."""
        catalog = session.catalog()
        entity = find_entity(session.api(), term, ref, catalog.kind_location(term))
        attrs = parse_attributes(attributes)
        if title is not None:
            attrs["occi.core.title"] = title
        if summary is not None:
            attrs["occi.core.summary"] = summary
        doc: dict[str, Any] = {"attributes": attrs}
        if mixins:
            doc["mixins"] = [cid(catalog.resolve(m, "")) for m in mixins]
        if not attrs and not mixins:
            raise UsageFailure("nothing to update: give --title, --attribute or --mixin")
        updated = session.api().update(location_of(entity), doc)
        show(session, [updated], term, single=True)

    @group.command("delete")
    @click.argument("refs", nargs=-1, required=True)
    @wait_options
    @pass_session
    def delete(session: Session, refs: tuple[str, ...], wait_: bool, timeout: float) -> None:
        """Delete entities: each REF an id, location or title."""
        path = session.catalog().kind_location(term)
        for ref in refs:
            location = location_of(find_entity(session.api(), term, ref, path))
            session.api().delete(location)
            if wait_:
                wait.wait_gone(session.api(), location, timeout, f"{term} {ref}")
            click.echo(f"deleted {location}", err=True)

    return group


def act(
    session: Session,
    term: str,
    ref: str,
    action: str,
    attributes: dict[str, Any],
    wait_: bool,
    timeout: float,
) -> dict[str, Any]:
    """Trigger `action` on the entity `ref` names and (with wait_) wait for its state."""
    catalog = session.catalog()
    kind = catalog.kind(term)
    entity = find_entity(session.api(), term, ref, catalog.kind_location(term))
    location = location_of(entity)
    result = session.api().action(location, catalog.action(kind, action), attributes)
    if "kind" not in result:  # save answers with the new image's mixin
        return result
    result.setdefault("location", location)
    if wait_:
        target = wait.ACTION_TARGETS.get(action)
        result = wait.wait_for(
            session.api(), result, [target] if target else [], timeout, f"{term} {action}"
        )
    return result


def action_command(group: click.Group, term: str, action: str, help_text: str) -> None:
    @group.command(action, help=help_text)
    @click.argument("ref")
    @wait_options
    @output_options
    @pass_session
    def command(session: Session, ref: str, wait_: bool, timeout: float) -> None:
        show(session, [act(session, term, ref, action, {}, wait_, timeout)], term, True)


def create_entity(
    session: Session, term: str, doc: dict[str, Any], wait_: bool, timeout: float
) -> dict[str, Any]:
    doc["kind"] = INFRA + term
    created = session.api().create(session.catalog().kind_location(term), doc)
    if wait_:
        created = wait.wait_for(session.api(), created, [], timeout, f"{term} create")
    return created


def zone_mixins(session: Session, zone: str | None, mixins: tuple[str, ...]) -> list[str]:
    catalog = session.catalog()
    out = [cid(catalog.resolve(m, "")) for m in mixins]
    if zone:
        out.append(cid(catalog.resolve(zone, "zone")))
    return out


def base64_text(text: str) -> str:
    return base64.b64encode(text.encode()).decode()

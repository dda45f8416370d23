"""For administrators: `occi hosts|clusters|zones list|show|maintenance` and `occi events`, over
the server's JSON admin API (/-/admin/). Members get exit code 5 (403)."""

from __future__ import annotations

import time
from typing import Any

import click

from occi.client.failures import Failed, TimedOut
from occi.client.session import Session, output_options, pass_session
from occi.client.views import COLUMNS
from occi.client.wait import Progress

#: host admin states that end a maintenance
SETTLED = {"maintenance", "enabled", "error-in-maintenance", "disabled"}


def inventory_group(kind: str, what: str, filter_name: str | None) -> click.Group:
    group = click.Group(kind, help=f"{what.capitalize()}s of the inventory (administrators).")

    @group.command("list")
    @(
        click.option(f"--{filter_name}", "parent", help=f"Only those of this {filter_name}.")
        if (filter_name)
        else (lambda f: f)
    )
    @output_options
    @pass_session
    def list_(session: Session, parent: str | None = None) -> None:
        """List them."""
        params = {filter_name: parent} if filter_name else {}
        docs = session.api().admin("GET", kind, **params)[kind]
        session.output.emit(docs, COLUMNS[kind], docs=docs)

    @group.command("show")
    @click.argument("name")
    @output_options
    @pass_session
    def show(session: Session, name: str) -> None:
        """Show one, by name."""
        doc = session.api().admin("GET", f"{kind}/{name}")
        session.output.emit([doc], list(doc), docs=doc, single=True)

    @group.command("maintenance")
    @click.argument("name")
    @click.option("--cancel", is_flag=True, help="End the maintenance: enable the hosts again.")
    @click.option("--wait/--no-wait", "wait_", default=True, show_default=True)
    @click.option("--timeout", type=click.FloatRange(0.1, 86400), default=600, show_default=True)
    @output_options
    @pass_session
    def maintenance(session: Session, name: str, cancel: bool, wait_: bool, timeout: float) -> None:
        """Put the host (every host of the cluster or zone) into maintenance: its VMs move to
        other hosts. Exit 1 when some stay (error-in-maintenance, the reason printed)."""
        hosts = _hosts_of(session, kind, name)
        action = "cancel-maintenance" if cancel else "maintenance"
        docs = [session.api().admin("POST", f"hosts/{h}/{action}") for h in hosts]
        if wait_ and not cancel:
            docs = [_await(session, d, timeout) for d in docs]
        session.output.emit(
            docs,
            COLUMNS["hosts"],
            docs=docs[0] if kind == "hosts" else docs,
            single=kind == "hosts",
        )
        stuck = [d for d in docs if d.get("admin_state") == "error-in-maintenance"]
        if stuck:
            raise Failed("; ".join(f"{d['name']}: {d.get('state_message')}" for d in stuck))

    return group


def _hosts_of(session: Session, kind: str, name: str) -> list[str]:
    api = session.api()
    if kind == "hosts":
        return [name]
    if kind == "clusters":
        api.admin("GET", f"clusters/{name}")  # 404 for a cluster that is not there
        return [h["name"] for h in api.admin("GET", "hosts", cluster=name)["hosts"]]
    api.admin("GET", f"zones/{name}")
    out: list[str] = []
    for c in api.admin("GET", "clusters", zone=name)["clusters"]:
        out += [h["name"] for h in api.admin("GET", "hosts", cluster=c["name"])["hosts"]]
    return out


def _await(session: Session, doc: dict[str, Any], timeout: float) -> dict[str, Any]:
    """The host once its maintenance is over (maintenance or error-in-maintenance)."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    with Progress(f"host {doc['name']}: {doc.get('admin_state')}") as status:
        while doc.get("admin_state") not in SETTLED:
            if time.monotonic() >= deadline:
                raise TimedOut(
                    f"host {doc['name']} is still {doc.get('admin_state')} after {timeout:g} s"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
            doc = session.api().admin("GET", f"hosts/{doc['name']}")
            status.update(f"host {doc['name']}: {doc.get('admin_state')}")
    return doc


hosts = inventory_group("hosts", "host", "cluster")


def _host_action(action: str, help_text: str) -> None:
    @hosts.command(action, help=help_text)
    @click.argument("name")
    @output_options
    @pass_session
    def command(session: Session, name: str) -> None:
        doc = session.api().admin("POST", f"hosts/{name}/{action}")
        session.output.emit([doc], list(doc), docs=doc, single=True)


for _action, _help in (
    ("enable", "Let placement use the host again."),
    ("disable", "Place nothing new on the host (its VMs stay)."),
    ("cancel-maintenance", "End the host's maintenance (as maintenance --cancel)."),
):
    _host_action(_action, _help)
clusters = inventory_group("clusters", "cluster", "zone")
zones = inventory_group("zones", "zone", None)


@click.command()
@click.option("--project", help="Only this project's (name or id).")
@click.option("--user", help="Only this user's.")
@click.option("--since", metavar="AGE|TIME", help="Only newer ones: 30m, 1h, 2d or an ISO time.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@output_options
@pass_session
def events(
    session: Session, project: str | None, user: str | None, since: str | None, limit: int
) -> None:
    """The audit log, newest first (administrators)."""
    docs = session.api().admin(
        "GET", "events", project=project, user=user, since=since, limit=limit
    )["events"]
    rows = [{**d, "at": str(d.get("at", ""))[:19].replace("T", " ")} for d in docs]
    session.output.emit(rows, COLUMNS["events"], docs=docs)

"""Switching simulated hosts off and on: how a simulated cloud shows a host that stops answering.

A host switched off is a row of `sim_hosts_off` in the simulator's platform database, so every
server process (and every server on that database) sees it at once. The backend then raises
Unreachable from `host_capacity` for that host (host monitoring marks it down after
`host_down_after` seconds) and from every operation on a machine placed on it; its machines
keep their state, as a real host's VMs do behind a broken network, and are seen again once it
is switched on.

`occi-simulator hosts off|on|list [NAME]` is the command line (the `occi-simulator` console
script). It finds the platform database as the server does: the server's settings (defaults,
--config or OCCI_CONFIG, OCCI_* variables, then --database-url), the simulator's beside the
server's SQLite file unless OCCI_SIMULATOR_DATABASE_URL says otherwise (see
backends.simulator.backend.platform_url).

Exit codes: 0 done (switching a host to the state it is in already is done too), 1 a
settings or database problem, 2 a usage error (argparse).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from backends.simulator.schema import hosts_off

#: a host's name, as simulator_hosts and the inventory spell them
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
NAME_HELP = "a simulated host's name (sim1, or one of simulator_hosts)"


def off_message(name: str) -> str:
    """What a switched-off host's platform says (host monitoring shows it to users)."""
    return f"simulated host {name} is switched off (occi-simulator hosts on {name} restores it)"


def is_off(conn: Connection, name: str) -> bool:
    return (
        conn.execute(select(hosts_off.c.name).where(hosts_off.c.name == name)).first() is not None
    )


def off_hosts(conn: Connection) -> dict[str, datetime]:
    """Switched-off hosts and since when."""
    rows = conn.execute(select(hosts_off.c.name, hosts_off.c.since).order_by(hosts_off.c.name))
    return {name: since for name, since in rows}


def switch(engine: Engine, name: str, on: bool) -> bool:
    """Switch a host on or off; False when it was so already."""
    with engine.begin() as conn:
        if on:
            return bool(conn.execute(delete(hosts_off).where(hosts_off.c.name == name)).rowcount)
        try:
            with conn.begin_nested():
                conn.execute(insert(hosts_off).values(name=name, since=datetime.now(UTC)))
        except IntegrityError:
            return False
        return True


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="occi-simulator",
        description="Operate the simulator backend's pretend platform. `hosts off NAME` makes a "
        "simulated host stop answering (host monitoring then marks it down and its VMs error), "
        "`hosts on NAME` brings it back, `hosts list` shows the declared hosts and which are "
        "off. The platform database is found from the server's settings (OCCI_* variables, "
        "--config, --database-url). Exit codes: 0 done, 1 settings or database problem, "
        "2 usage error.",
        allow_abbrev=False,
    )
    p.add_argument("--config", metavar="FILE", help="INI settings file (default: $OCCI_CONFIG)")
    p.add_argument(
        "--database-url",
        metavar="URL",
        help="the server's database (the simulator's platform lives beside a SQLite one; "
        "OCCI_SIMULATOR_DATABASE_URL names it outright)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    hosts = sub.add_parser("hosts", help="switch simulated hosts off and on, or list them")
    what = hosts.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("off", "make a host stop answering"),
        ("on", "make a host answer again"),
    ):
        one = what.add_parser(action, help=text)
        one.add_argument("name", metavar="NAME", help=NAME_HELP)
    what.add_parser("list", help="the declared hosts and the ones switched off")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from backends.simulator.backend import platform_url
    from backends.simulator.database import make_engine
    from backends.simulator.hosts import HostsOptionError, parse_hosts
    from occi.settings import Settings, SettingsError

    name = getattr(args, "name", None)
    if name is not None and not _name_ok(name):
        print(f"occi-simulator: invalid host name {name[:70]!r}", file=sys.stderr)
        return 2
    try:
        settings = Settings.load(
            config_file=args.config, overrides={"database_url": args.database_url}
        )
        declared = [h.name for h in parse_hosts(settings.extra.get("simulator_hosts"))]
    except (SettingsError, HostsOptionError) as exc:
        print(f"occi-simulator: {exc}", file=sys.stderr)
        return 1
    url = platform_url(settings.backend_settings())
    try:
        engine = make_engine(url)
        try:
            return _run(args.action, name, engine, declared)
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        print(f"occi-simulator: the simulator's database {url} failed: {exc}", file=sys.stderr)
        return 1


def _name_ok(name: str) -> bool:
    return NAME.fullmatch(name) is not None


def _run(action: str, name: str | None, engine: Engine, declared: list[str]) -> int:
    if action == "list":
        with engine.connect() as conn:
            off = off_hosts(conn)
        for host in [*declared, *(h for h in off if h not in declared)]:
            since = off.get(host)
            state = f"off since {since:%Y-%m-%d %H:%M:%S}" if since is not None else "on"
            note = "" if host in declared else "  (not in simulator_hosts)"
            print(f"{host}\t{state}{note}")
        return 0
    assert name is not None  # argparse requires it for off and on
    changed = switch(engine, name, on=action == "on")
    note = "" if name in declared else " (not in simulator_hosts: a host added by an admin?)"
    if changed:
        print(f"host {name} is {'on' if action == 'on' else 'off'} now{note}")
    else:
        print(f"host {name} was {action} already{note}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

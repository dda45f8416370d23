"""`occi-server`: the command line. Starts gunicorn with the OCCI app, upgrades the schema,
shows the servers and jobs sharing a database, lists the backends and whether they load, and
administers projects, users, roles, API tokens, quotas and EC2 access keys (occi.cli_identity),
zones, clusters and hosts (occi.cli_inventory), shows the audit log (occi.cli_events).

Exit codes: 0 success, 1 configuration or database error, 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from occi import __version__, cli_events, cli_identity, cli_inventory
from occi.plugins import available, probe
from occi.settings import Settings, SettingsError, setting_names, suggest

log = logging.getLogger("occi.cli")


#: the options that are settings (flag, argparse keywords), accepted before or after any command
SETTING_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--bind", {"metavar": "HOST:PORT", "help": "address to listen on (127.0.0.1:8080)"}),
    ("--workers", {"type": int, "metavar": "N", "help": "gunicorn worker processes (2)"}),
    ("--threads", {"type": int, "metavar": "N", "help": "threads per worker (4)"}),
    (
        "--database-url",
        {
            "metavar": "URL",
            "help": "SQLAlchemy URL: sqlite:///occi.db (default) or postgresql://...",
        },
    ),
    ("--backend", {"metavar": "NAME", "help": "backend plugin (simulator)"}),
    ("--base-url", {"metavar": "URL", "help": "public root URL behind a proxy"}),
]
#: commands that may create a new SQLite file (in an existing directory); others need the file
CREATES_DATABASE = ("serve", "migrate")


def _parser() -> argparse.ArgumentParser:
    # One parent holds the global options; every parser gets it, with SUPPRESS as the default
    # so that an option given before the command is not reset by the command's parser.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "--config", metavar="FILE", help="INI settings file (default: $OCCI_CONFIG)"
    )
    for flag, kwargs in SETTING_OPTIONS:
        common.add_argument(flag, **kwargs)
    p = argparse.ArgumentParser(
        prog="occi-server",
        description="OCCI 1.2 cloud interface server. Settings come from defaults, an optional "
        "INI file ([occi] section), then OCCI_* environment variables, then these options, each "
        "over the one before. Options go before or after the command.",
        parents=[common],
        allow_abbrev=False,
    )
    p.add_argument("--version", action="version", version=f"occi-server {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    kw: dict[str, Any] = {"parents": [common], "allow_abbrev": False}
    sub.add_parser("serve", help="run the server under gunicorn (the default command)", **kw)
    sub.add_parser("migrate", help="create or upgrade the database schema, then exit", **kw)
    status = sub.add_parser(
        "status", help="list the server processes, their heartbeats and jobs", **kw
    )
    status.add_argument(
        "--jobs", type=int, default=20, metavar="N", help="how many recent jobs to list (20)"
    )
    sub.add_parser("backends", help="list the installed backends and whether they load", **kw)
    cli_identity.add_parsers(sub, kw)
    cli_inventory.add_parsers(sub, kw)
    cli_events.add_parser(sub, kw)
    return p


def _check_options(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Name a mistyped option (argparse would take its value for the command otherwise)."""
    known: set[str] = set()
    parsers = [parser]
    while parsers:  # commands, and the actions of commands that have them (users create)
        for action in parsers.pop()._actions:
            known.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    for arg in argv:
        if arg == "--":
            break
        option = arg.split("=", 1)[0]
        if option.startswith("-") and len(option) > 1 and option not in known:
            if option[1:].replace(".", "").isdigit():
                continue  # a negative number is a value
            parser.error(f"unknown option {option}{suggest(option, sorted(known))}")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as options (only those given)."""
    names = [flag[2:].replace("-", "_") for flag, _ in SETTING_OPTIONS]
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    _check_options(parser, argv)
    args = parser.parse_args(argv)
    if args.command == "users" and args.action == "create":
        if (args.oidc_issuer is None) != (args.oidc_subject is None):
            parser.error("--oidc-issuer and --oidc-subject go together")
    overrides = _overrides(args)
    if args.command == "clusters":  # its --backend names the cluster's backend
        overrides.pop("backend", None)
    try:
        settings = Settings.load(config_file=getattr(args, "config", None), overrides=overrides)
    except SettingsError as exc:
        print(f"occi-server: {exc}", file=sys.stderr)
        return 1
    from occi.metrics import configure_logging

    configure_logging(settings.log_level)
    if settings.log_level.upper() != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    for key in settings.unrecognised():
        log.warning(
            "OCCI_%s is neither a setting nor a backend option%s: ignored",
            key.upper(),
            suggest(key, setting_names()),
        )
    command = args.command or "serve"
    if command == "backends":
        return _backends()
    if command == "serve":
        found = probe(settings.backend)
        if not found.usable:
            print(f"occi-server: {found.reason}", file=sys.stderr)
            return 1
        uri = settings.extra.get("libvirt_uri", "")
        if settings.backend == "libvirt" and uri.startswith("test:") and settings.workers > 1:
            log.warning(
                "libvirt's test driver (%s) keeps its machines inside each process: with %d "
                "workers each sees its own; serve it with --workers 1",
                uri,
                settings.workers,
            )
    problem = sqlite_problem(settings.database_url, may_create=command in CREATES_DATABASE)
    if problem:
        print(f"occi-server: {problem}", file=sys.stderr)
        return 1
    try:
        from occi.store import make_store

        make_store(settings.database_url).upgrade()
    except Exception as exc:  # a database the server cannot use: say so, exit 1
        print(
            f"occi-server: cannot prepare the database {settings.database_url}: {exc}",
            file=sys.stderr,
        )
        return 1
    if command == "migrate":
        print(f"database {settings.database_url} is up to date")
        return 0
    if command == "status":
        return _status(settings, args.jobs)
    if command in cli_identity.COMMANDS:
        return _administer(args, settings)
    if command in cli_inventory.COMMANDS:
        return _administer(args, settings, cli_inventory.run)
    if command == "events":
        return _events(args, settings)
    return _prepare_serving(settings) or _serve(settings)


def _prepare_serving(settings: Settings) -> int:
    """What `serve` does once before gunicorn forks: check the CORS origins, on a database
    without users make the first ones (occi.identity.first_start), make or re-sync the
    one-cluster shorthand (occi.inventory.shorthand). 1 when it cannot."""
    from occi.api.cors import parse_origins
    from occi.errors import OcciError
    from occi.identity.first_start import FirstStartError, first_start
    from occi.inventory import shorthand
    from occi.store import make_store

    try:
        parse_origins(settings.cors_origins)
        first_start(settings)
        store = make_store(settings.database_url)
        try:  # the zone and cluster of OCCI_BACKEND, unless an administrator made clusters
            shorthand.ensure(store, settings)
        finally:
            store.close()
    except (ValueError, FirstStartError, OcciError) as exc:
        print(f"occi-server: {exc}", file=sys.stderr)
        return 1
    return 0


def _administer(args: argparse.Namespace, settings: Settings, run: Any = cli_identity.run) -> int:
    """One administration command (identity, inventory); a refusal is one line on stderr and
    exit 1."""
    from occi.errors import OcciError

    try:
        return int(run(args, settings))
    except OcciError as exc:
        print(f"occi-server: {exc}", file=sys.stderr)
        return 1


def _events(args: argparse.Namespace, settings: Settings) -> int:
    """The audit log; a database error is one line on stderr and exit 1."""
    from occi.errors import OcciError

    try:
        return cli_events.run(args, settings)
    except OcciError as exc:
        print(f"occi-server: {exc}", file=sys.stderr)
        return 1


def _backends() -> int:
    """Each installed backend, and whether it loads here (else why not, what to install)."""
    probes = [probe(name) for name in available()]
    width = max(len(p.name) for p in probes)
    for p in probes:
        print(f"{p.name:{width}}  " + ("usable" if p.usable else f"not usable: {p.reason}"))
    return 0


def sqlite_problem(url: str, may_create: bool) -> str | None:
    """Why a SQLite URL points nowhere useful, or None: its directory must exist (a mistyped
    path is not a new empty database), and so must the file unless the command may create it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # not a URL the store can open either: it says so
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = Path(database)
    if not path.parent.is_dir():
        return f"the directory {path.parent} of the SQLite database {url} does not exist"
    if not may_create and not path.exists():
        return (
            f"the SQLite database {path} does not exist "
            "(occi-server migrate or serve creates a new one)"
        )
    return None


def _status(settings: Settings, limit: int) -> int:
    """Servers sharing the database, their heartbeats, and the job queue."""
    import time

    from occi.store import make_store

    store = make_store(settings.database_url)
    with store.begin(readonly=True) as tx:
        servers = tx.jobs.servers()
        counts = tx.jobs.counts()
        recent = tx.jobs.recent(limit)
    now = time.time()
    print(f"{'SERVER':42} {'STATUS':8} {'HEARTBEAT':>12}  RUNNING")
    running: dict[str, int] = {}
    for j in recent:
        if j.status == "running" and j.owner:
            running[j.owner] = running.get(j.owner, 0) + 1
    for srv in servers:
        age = now - srv.heartbeat_at
        # A server silent for dead_after is dead even before another server has marked it so
        # (there may be no other server left to do it).
        state = "dead" if srv.status == "alive" and age > settings.dead_after else srv.status
        print(f"{srv.id:42} {state:8} {age:>10.1f}s  {running.get(srv.id, 0)}")
    print()
    print(
        "JOBS " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        if counts
        else "JOBS none"
    )
    if recent:
        print()
        print(f"{'JOB':36} {'OPERATION':10} {'ENTITY':36} {'STATUS':8} {'TRIES':>5}  OWNER / ERROR")
        for j in recent:
            extra = j.error if j.status == "failed" else (j.owner or "")
            print(
                f"{j.id:36} {j.operation:10} {j.entity_id[:36]:36} {j.status:8} "
                f"{j.attempts:>5}  {extra}"
            )
    store.close()
    return 0


def gunicorn_config(settings: Settings) -> dict[str, Any]:
    """The gunicorn settings the server runs under (the benchmark's baseline uses them too)."""
    return {
        "bind": settings.bind,
        "workers": settings.workers,
        "threads": settings.threads,
        # gthread with a deadline on reading each request (occi/api/worker.py), also for one
        # thread: gunicorn's sync worker would let one slow client hold the whole process
        "worker_class": "occi.api.worker.OcciThreadWorker",
        "accesslog": "-",
        "limit_request_field_size": 65536,
        "limit_request_fields": 500,
        "graceful_timeout": 10,
    }


def observability_config() -> dict[str, Any]:
    """gunicorn settings for metrics and request ids: each access log line ends with the
    request's id, and a dead worker's metric files are tidied (occi.metrics)."""
    from occi import metrics

    return {"access_log_format": metrics.ACCESS_LOG_FORMAT, "child_exit": metrics.worker_exited}


def _serve(settings: Settings) -> int:
    from gunicorn.app.base import BaseApplication

    from occi import metrics

    os.environ.update(settings.to_env())
    # before any worker imports prometheus_client: each one writes its metrics there
    metrics_dir, temporary = metrics.prepare_multiprocess_dir(settings.metrics_dir)

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            config = {**gunicorn_config(settings), **observability_config()}
            for name, value in config.items():
                self.cfg.set(name, value)

        def load(self):
            from occi.api.wsgi import application

            return application

    log.info(
        "OCCI server on http://%s/ (backend %s, database %s)",
        settings.bind,
        settings.backend,
        settings.database_url,
    )
    master = os.getpid()
    try:
        _Gunicorn().run()
    finally:  # workers leave through here too (gunicorn's sys.exit in the forked child)
        if temporary and os.getpid() == master:
            metrics.remove_multiprocess_dir(metrics_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`occi-server`: the command line. Starts gunicorn with the OCCI app, or upgrades the schema.

Exit codes: 0 success, 1 configuration or database error, 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from occi import __version__
from occi.settings import Settings, SettingsError

log = logging.getLogger("occi.cli")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="occi-server",
        description="OCCI 1.2 cloud interface server. Settings come from OCCI_* environment "
        "variables and an optional INI file ([occi] section); options here override both.",
    )
    p.add_argument("--version", action="version", version=f"occi-server {__version__}")
    p.add_argument("--config", metavar="FILE", help="INI settings file (default: $OCCI_CONFIG)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the server under gunicorn (the default command)")
    for sp in (p, serve):
        sp.add_argument("--bind", metavar="HOST:PORT", help="address to listen on (127.0.0.1:8080)")
        sp.add_argument("--workers", type=int, metavar="N", help="gunicorn worker processes (2)")
        sp.add_argument("--threads", type=int, metavar="N", help="threads per worker (4)")
        sp.add_argument(
            "--database-url",
            metavar="URL",
            help="SQLAlchemy URL: sqlite:///occi.db (default) or postgresql://...",
        )
        sp.add_argument("--backend", metavar="NAME", help="backend plugin (simulator)")
        sp.add_argument("--base-url", metavar="URL", help="public root URL behind a proxy")
    sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    status = sub.add_parser("status", help="list the server processes, their heartbeats and jobs")
    status.add_argument(
        "--jobs", type=int, default=20, metavar="N", help="how many recent jobs to list (20)"
    )
    sub.add_parser("backends", help="list the installed backends")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.load(config_file=args.config)
        overrides = {
            k: v
            for k, v in {
                "bind": getattr(args, "bind", None),
                "workers": getattr(args, "workers", None),
                "threads": getattr(args, "threads", None),
                "database_url": getattr(args, "database_url", None),
                "backend": getattr(args, "backend", None),
                "base_url": getattr(args, "base_url", None),
            }.items()
            if v is not None
        }
        if overrides:
            merged = {
                **settings.extra,
                **{
                    f: getattr(settings, f)
                    for f in (
                        "bind",
                        "workers",
                        "threads",
                        "database_url",
                        "backend",
                        "base_url",
                        "max_body",
                        "max_page_size",
                        "log_level",
                    )
                },
                **overrides,
            }
            settings = Settings.from_mapping(merged)
    except SettingsError as exc:
        print(f"occi-server: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    if settings.log_level.upper() != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    command = args.command or "serve"
    if command == "backends":
        from occi.plugins import available

        print("\n".join(available()))
        return 0
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
    return _serve(settings)


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
        print(f"{srv.id:42} {srv.status:8} {age:>10.1f}s  {running.get(srv.id, 0)}")
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


def _serve(settings: Settings) -> int:
    from gunicorn.app.base import BaseApplication

    os.environ.update(settings.to_env())

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            for name, value in gunicorn_config(settings).items():
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
    _Gunicorn().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

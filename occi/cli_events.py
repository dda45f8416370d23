"""`occi-server events`: the audit log (occi.identity.audit) on the command line, newest first,
as a table for people or as JSON lines (`--json`, one event per line) for scripts.

Exit codes as for every command: 0 done (also when nothing matched), 1 a database error,
2 usage (an unreadable --since or --limit).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from occi.settings import Settings


def since(text: str) -> datetime:
    """`--since`: an age (90s, 30m, 1h, 2d, 1w) or an ISO 8601 time (UTC unless it says)."""
    from occi.identity.audit import parse_since

    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return n


def add_parser(sub: Any, kw: dict[str, Any]) -> None:
    p = sub.add_parser(
        "events",
        help="show the audit log: the writes clients asked for, newest first",
        description="The audit log: one event per write a client asked for (create, update, "
        "delete, action, mixin changes), whatever its outcome. Kept for audit_days days.",
        **kw,
    )
    p.add_argument("--project", metavar="PROJECT", help="only this project (its name or id)")
    p.add_argument("--user", metavar="USER", help="only this user's")
    p.add_argument(
        "--since", type=since, metavar="AGE|TIME", help="only newer ones: 1h, 2d or an ISO time"
    )
    p.add_argument("--limit", type=_count, default=100, metavar="N", help="at most N events (100)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from occi.identity import audit
    from occi.store import make_store

    store = make_store(settings.database_url)
    try:
        found = audit.events(
            store,
            project=getattr(args, "project", None),
            user=getattr(args, "user", None),
            since=getattr(args, "since", None),
            limit=args.limit,
        )
    finally:
        store.close()
    if args.json:
        for e in found:
            print(json.dumps(audit.to_doc(e)))
        return 0
    print(f"{'TIME (UTC)':19} {'USER':12} {'PROJECT':12} {'STATUS':>6}  {'OPERATION':22} ENTITY")
    for e in found:
        line = (
            f"{e.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} {(e.user or '-')[:12]:12} "
            f"{(e.project_name or e.project or '-')[:12]:12} {e.status:>6}  {e.operation[:22]:22} {e.entity or '-'}"
        )
        if e.result:
            line += f"  ({e.result[:120]})"
        print(line)
    return 0

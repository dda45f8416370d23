"""`occi-server projects|users|roles|tokens|quotas|credentials`: the administration of the
identity model (occi.identity) on the command line. Output is for people; the token of `tokens
create` is the one line on stdout, so a script can take it, and `credentials create` prints
the EC2 access key id and secret as two shell assignments (AWS_ACCESS_KEY_ID=...).

Exit codes as for every command: 0 done, 1 refused (unknown or taken name, a project that still
owns something) or a database error, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from occi.identity.model import QUOTA_RESOURCES, ROLES, UNLIMITED
from occi.settings import Settings

if TYPE_CHECKING:
    from occi.identity.store import IdentityTx

COMMANDS = ("projects", "users", "roles", "tokens", "quotas", "credentials")
#: the PROJECT of `roles grant|revoke` for the global admin role
EVERY_PROJECT = "*"
MIN_PASSWORD = 8


def add_parsers(sub: Any, kw: dict[str, Any]) -> None:
    """The five commands and their actions, each with `--help`, under `sub`."""

    def group(name: str, help: str) -> Any:
        parser = sub.add_parser(name, help=help, **kw)
        return parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    projects = group("projects", "create, list or delete projects (they own the resources)")
    p = projects.add_parser("create", help="create a project", **kw)
    p.add_argument("name", metavar="NAME")
    projects.add_parser("list", help="list the projects and what each owns", **kw)
    p = projects.add_parser("delete", help="delete a project that owns nothing (any more)", **kw)
    p.add_argument("name", metavar="NAME")

    users = group("users", "create, list or delete users")
    p = users.add_parser(
        "create",
        help="create a user: local (password), federated (OIDC) or by certificate (X.509)",
        **kw,
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the password from the first line of stdin ({MIN_PASSWORD} characters or more)",
    )
    p.add_argument("--oidc-issuer", metavar="URL", help="the OpenID Connect issuer (iss)")
    p.add_argument("--oidc-subject", metavar="SUB", help="the user's subject (sub) there")
    p.add_argument("--x509-dn", metavar="DN", help="the subject DN of the user's certificate")
    users.add_parser("list", help="list the users, how they sign in and their roles", **kw)
    p = users.add_parser("delete", help="delete a user with their roles and tokens", **kw)
    p.add_argument("name", metavar="NAME")

    roles = group(
        "roles",
        "grant or revoke a role: admin (global), member or reader (on one project)",
    )
    for action, text in (("grant", "give USER the ROLE"), ("revoke", "take the ROLE from USER")):
        p = roles.add_parser(
            action,
            help=f"{text} on PROJECT ('{EVERY_PROJECT}' for admin, which is global)",
            **kw,
        )
        p.add_argument("user", metavar="USER")
        p.add_argument("project", metavar="PROJECT")
        p.add_argument("role", metavar="ROLE", help=", ".join(ROLES))

    tokens = group("tokens", "create, list or revoke API tokens")
    p = tokens.add_parser("create", help="make a token for USER and print it (once)", **kw)
    p.add_argument("user", metavar="USER")
    p.add_argument("--project", metavar="PROJECT", help="scope the token to one project")
    p.add_argument(
        "--expires-in", type=_days, metavar="DAYS", help="expire after DAYS days (never)"
    )
    p.add_argument("--name", metavar="NAME", help="a note saying what the token is for")
    p = tokens.add_parser("list", help="list the tokens (never their secrets)", **kw)
    p.add_argument("user", metavar="USER", nargs="?", help="only this user's")
    p = tokens.add_parser("revoke", help="revoke a token by its id", **kw)
    p.add_argument("id", metavar="ID")

    creds = group("credentials", "create, list or delete EC2 access keys (the /ec2/ API)")
    p = creds.add_parser(
        "create",
        help="make an EC2 access key for USER acting in PROJECT; print its id and secret (once)",
        **kw,
    )
    p.add_argument("user", metavar="USER")
    p.add_argument("--project", metavar="PROJECT", required=True, help="the project it acts in")
    p = creds.add_parser("list", help="list the EC2 access keys (never their secrets)", **kw)
    p.add_argument("user", metavar="USER", nargs="?", help="only this user's")
    p = creds.add_parser("delete", help="delete an EC2 access key by its id", **kw)
    p.add_argument("access_key", metavar="ACCESS_KEY_ID")

    quotas = group("quotas", "show or set a project's quotas (-1: unlimited)")
    p = quotas.add_parser("show", help="a project's limits, its own or the defaults", **kw)
    p.add_argument("project", metavar="PROJECT")
    p = quotas.add_parser("set", help="set one of a project's limits", **kw)
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("resource", metavar="RESOURCE", help=", ".join(QUOTA_RESOURCES))
    p.add_argument("limit", metavar="LIMIT", type=_limit, help="a number, or -1 for unlimited")


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not days > 0:
        raise argparse.ArgumentTypeError(f"a token expires after more than 0 days, not {text}")
    return days


def _limit(text: str) -> int:
    if text == "unlimited":
        return UNLIMITED
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _when(value: datetime | None, never: str = "never") -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else never


def _limit_text(limit: int) -> str:
    return "unlimited" if limit == UNLIMITED else str(limit)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out one administration command; raises occi.errors' errors for refusals."""
    from occi.identity.store import IdentityTx
    from occi.store.sql import SqlStore

    store = SqlStore(settings.database_url)
    try:
        with store.begin() as tx:
            return _ACTIONS[(args.command, args.action)](IdentityTx(tx), args, settings)
    finally:
        store.close()


def _read_password() -> str:
    from occi.errors import BadRequest

    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise BadRequest(
            f"the password on stdin must have {MIN_PASSWORD} characters or more"
            + (" (stdin was empty)" if not password else "")
        )
    return password


def _projects_create(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    project = ident.create_project(args.name)
    print(f"project {project.name} created (id {project.id})")
    return 0


def _projects_list(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    print(f"{'PROJECT':24} {'ENTITIES':>8} {'MIXINS':>6}  {'CREATED':16}  ID")
    for p in ident.projects():
        owned = ident.owned(p.id)
        print(
            f"{p.name:24} {owned['entities']:>8} {owned['user mixins']:>6}  "
            f"{_when(p.created_at):16}  {p.id}"
        )
    return 0


def _projects_delete(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    ident.delete_project(args.name)
    print(f"project {args.name} deleted")
    return 0


def _users_create(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    from occi.identity.passwords import hash_password

    password_hash = hash_password(_read_password()) if args.password_stdin else None
    if args.x509_dn is not None:
        from occi.identity.x509 import normalize_dn

        # stored as the X.509 method looks it up, whichever form the administrator typed
        args.x509_dn = normalize_dn(args.x509_dn)
    user = ident.create_user(
        args.name,
        password_hash=password_hash,
        oidc_issuer=args.oidc_issuer,
        oidc_subject=args.oidc_subject,
        x509_dn=args.x509_dn,
    )
    how = ", ".join(user.methods) or "API tokens only"
    print(f"user {user.name} created (id {user.id}; signs in by {how})")
    return 0


def _users_list(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    held: dict[str, list[str]] = {}
    for r in ident.roles():
        held.setdefault(r.user_id, []).append(
            r.role if r.project_name is None else f"{r.role}@{r.project_name}"
        )
    print(f"{'USER':24} {'SIGNS IN BY':20} ROLES")
    for u in ident.users():
        how = ",".join(u.methods) or "tokens"
        state = " (disabled)" if u.disabled else ""
        print(f"{u.name:24} {how:20} {' '.join(held.get(u.id, [])) or '-'}{state}")
    return 0


def _users_delete(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    ident.delete_user(args.name)
    print(f"user {args.name} deleted, with their roles and tokens")
    return 0


def _scope(args: argparse.Namespace) -> str | None:
    from occi.errors import BadRequest

    if args.project == EVERY_PROJECT:
        return None
    if args.role == "admin":
        raise BadRequest(f"admin is a global role: give '{EVERY_PROJECT}' as the project")
    return str(args.project)


def _roles_grant(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    where = "every project" if args.project == EVERY_PROJECT else f"project {args.project}"
    if ident.grant(args.user, _scope(args), args.role):
        print(f"{args.user} is now {args.role} on {where}")
    else:
        print(f"{args.user} was {args.role} on {where} already")
    return 0


def _roles_revoke(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    where = "every project" if args.project == EVERY_PROJECT else f"project {args.project}"
    if ident.revoke(args.user, _scope(args), args.role):
        print(f"{args.user} is no longer {args.role} on {where}")
    else:
        print(f"{args.user} was not {args.role} on {where}")
    return 0


def _tokens_create(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    expires = None
    if args.expires_in is not None:
        expires = datetime.now(UTC) + timedelta(days=args.expires_in)
    row, token = ident.create_token(
        args.user, project=args.project, name=args.name, expires_at=expires
    )
    print(token)
    print(
        f"token {row.id} for {row.user_name} (project {row.project_name or 'any'}, expires "
        f"{_when(row.expires_at)}): shown this once, keep it now",
        file=sys.stderr,
    )
    return 0


def _tokens_list(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    print(f"{'ID':16} {'USER':16} {'PROJECT':16} {'STATUS':8} {'EXPIRES':16} {'LAST USED':16} NAME")
    for t in ident.tokens(args.user):
        print(
            f"{t.id:16} {t.user_name:16} {t.project_name or '(any)':16} {t.status(now):8} "
            f"{_when(t.expires_at):16} {_when(t.last_used_at):16} {t.name or ''}"
        )
    return 0


def _tokens_revoke(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    row = ident.revoke_token(args.id)
    print(f"token {row.id} of {row.user_name} revoked")
    return 0


def _quotas_show(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    print(f"{'RESOURCE':12} {'LIMIT':>10}  SOURCE")
    for q in ident.quotas(args.project, settings.default_quotas()):
        source = "project" if q.explicit else f"default (quota_{q.resource})"
        print(f"{q.resource:12} {_limit_text(q.limit):>10}  {source}")
    return 0


def _quotas_set(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    ident.set_quota(args.project, args.resource, args.limit)
    print(f"quota {args.resource} of {args.project} is now {_limit_text(args.limit)}")
    return 0


def _credentials_create(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    from occi.ec2 import credentials
    from occi.inventory.secrets import Cipher

    key, secret = credentials.create(ident, Cipher.from_settings(settings), args.user, args.project)
    if not credentials.roles(ident, key):
        print(
            f"warning: {key.user_name} holds no role in project {key.project_name}: the key "
            f"can do nothing there until one is granted (occi-server roles grant "
            f"{key.user_name} {key.project_name} member)",
            file=sys.stderr,
        )
    print(f"AWS_ACCESS_KEY_ID={key.access_key}")
    print(f"AWS_SECRET_ACCESS_KEY={secret}")
    print(
        f"EC2 access key {key.access_key} for {key.user_name} in project {key.project_name} "
        f"(region {settings.ec2_region}): the secret is shown this once, keep it now",
        file=sys.stderr,
    )
    return 0


def _credentials_list(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    from occi.ec2 import credentials

    print(f"{'ACCESS KEY ID':20} {'USER':16} {'PROJECT':16} CREATED")
    for k in credentials.listed(ident, args.user):
        print(f"{k.access_key:20} {k.user_name:16} {k.project_name:16} {_when(k.created_at)}")
    return 0


def _credentials_delete(ident: IdentityTx, args: argparse.Namespace, settings: Settings) -> int:
    from occi.ec2 import credentials

    credentials.delete(ident, args.access_key)
    print(f"EC2 access key {args.access_key} deleted")
    return 0


_ACTIONS = {
    ("projects", "create"): _projects_create,
    ("projects", "list"): _projects_list,
    ("projects", "delete"): _projects_delete,
    ("users", "create"): _users_create,
    ("users", "list"): _users_list,
    ("users", "delete"): _users_delete,
    ("roles", "grant"): _roles_grant,
    ("roles", "revoke"): _roles_revoke,
    ("tokens", "create"): _tokens_create,
    ("tokens", "list"): _tokens_list,
    ("tokens", "revoke"): _tokens_revoke,
    ("quotas", "show"): _quotas_show,
    ("quotas", "set"): _quotas_set,
    ("credentials", "create"): _credentials_create,
    ("credentials", "list"): _credentials_list,
    ("credentials", "delete"): _credentials_delete,
}

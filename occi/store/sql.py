"""The SQL store: occi.store.base's contract on SQLAlchemy Core, for SQLite and PostgreSQL.

Touches only the database and the neutral model (occi.model); no HTTP, rendering or backend.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from occi import metrics
from occi.errors import BadRequest, Conflict, IdTaken, NotFound, ServiceUnavailable
from occi.model import AttributeDef, Entity, Link, Mixin, Placement, Resource
from occi.store.base import Job, Query, Store, Stored, StoredPage, StoreTx
from occi.store.cache import EntityCache, Rows, SqliteChanges
from occi.store.health import Reachability, describe_failure, is_outage
from occi.store.jobs_sql import SqlJobTx
from occi.store.usage_sql import SqlUsageTx

log = logging.getLogger(__name__)

#: the Alembic scripts, found as a package wherever occi is imported from (tree, editable, wheel)
MIGRATIONS_DIR = files("occi.store.migrations")
#: pg_advisory_xact_lock key taken around schema upgrades ("OCCI" in ASCII)
UPGRADE_LOCK_KEY = 0x4F434349
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: value keys longer than this are stored as a digest, so the (name, value_key) index stays small
VALUE_KEY_MAX = 200

# ---------------------------------------------------------------------------------------------
# Schema (the Alembic migrations in occi/store/migrations create exactly this; a test compares)
# ---------------------------------------------------------------------------------------------

metadata = sa.MetaData()

#: the project that owns what is stored without naming one (rows from before migration 0005)
DEFAULT_PROJECT = "default"

entities = sa.Table(
    "entities",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("location", sa.String, nullable=False),
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("mixins", sa.Text, nullable=False),
    sa.Column("source_id", sa.String, nullable=True),
    sa.Column("source", sa.String, nullable=True),
    sa.Column("target", sa.String, nullable=True),
    sa.Column("source_kind", sa.String, nullable=True),
    sa.Column("target_kind", sa.String, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # the owning project (migration 0005); inserts that name none land in `default`
    sa.Column("project_id", sa.String, nullable=False, server_default=DEFAULT_PROJECT),
    # where it lives (migration 0007; occi.store.inventory_sql): its zone, the cluster whose
    # backend drives it, the host it runs on and what it reserved there, and the backend's
    # private reference to its platform object (never rendered)
    sa.Column("zone_id", sa.String, nullable=True),
    sa.Column("cluster_id", sa.String, nullable=True),
    sa.Column("host_id", sa.String, nullable=True),
    sa.Column("reserved_cores", sa.Integer, nullable=True),
    sa.Column("reserved_memory_mb", sa.BigInteger, nullable=True),
    sa.Column("platform_ref", sa.Text, nullable=True),
    sa.UniqueConstraint("id", name="uq_entities_id"),
    sa.UniqueConstraint("location", name="uq_entities_location"),
    sa.Index("ix_entities_kind_seq", "kind", "seq"),
    sa.Index("ix_entities_project_kind_seq", "project_id", "kind", "seq"),
    # partial: only links have a source and a target, so planners that gather statistics
    # (SQLite's ANALYZE) do not judge a mostly-NULL index useless and scan the table instead
    sa.Index(
        "ix_entities_link_source",
        "source_id",
        sqlite_where=sa.text("source_id IS NOT NULL"),
        postgresql_where=sa.text("source_id IS NOT NULL"),
    ),
    sa.Index(
        "ix_entities_link_target",
        "target",
        sqlite_where=sa.text("target IS NOT NULL"),
        postgresql_where=sa.text("target IS NOT NULL"),
    ),
    sa.Index(
        "ix_entities_host",
        "host_id",
        sqlite_where=sa.text("host_id IS NOT NULL"),
        postgresql_where=sa.text("host_id IS NOT NULL"),
    ),
    sqlite_autoincrement=True,
)

entity_mixins = sa.Table(
    "entity_mixins",
    metadata,
    sa.Column(
        "entity_seq",
        sa.Integer,
        sa.ForeignKey("entities.seq", ondelete="CASCADE", name="fk_entity_mixins_entity"),
        primary_key=True,
    ),
    sa.Column("mixin_id", sa.String, primary_key=True),
    sa.Index("ix_entity_mixins_mixin_id", "mixin_id", "entity_seq"),
)

entity_attributes = sa.Table(
    "entity_attributes",
    metadata,
    sa.Column(
        "entity_seq",
        sa.Integer,
        sa.ForeignKey("entities.seq", ondelete="CASCADE", name="fk_entity_attributes_entity"),
        primary_key=True,
    ),
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("value_key", sa.String, nullable=False),
    sa.Index("ix_entity_attributes_name_value", "name", "value_key", "entity_seq"),
)

user_mixins = sa.Table(
    "user_mixins",
    metadata,
    sa.Column("id", sa.String, nullable=False),
    sa.Column("scheme", sa.String, nullable=False),
    sa.Column("term", sa.String, nullable=False),
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("location", sa.String, nullable=True),
    sa.Column("depends", sa.Text, nullable=False),
    sa.Column("applies", sa.Text, nullable=False),
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("project_id", sa.String, nullable=False, server_default=DEFAULT_PROJECT),
    sa.PrimaryKeyConstraint("project_id", "id", name="pk_user_mixins"),
    sa.UniqueConstraint("project_id", "location", name="uq_user_mixins_project_location"),
)

#: one row per write a client asked for (migration 0006), kept for `audit_days` days
events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("user_name", sa.String, nullable=True),
    sa.Column("project_id", sa.String, nullable=True),
    sa.Column("request_id", sa.String, nullable=True),
    sa.Column("operation", sa.String, nullable=False),
    sa.Column("entity", sa.String, nullable=True),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Index("ix_events_at", "at"),
    sa.Index("ix_events_project_at", "project_id", "at"),
)

#: small shared counters, e.g. the categories version that invalidates registry caches
meta = sa.Table(
    "occi_meta",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

#: server processes sharing the database (occi.jobs): heartbeats decide who is alive
servers = sa.Table(
    "servers",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("host", sa.String, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)

#: hypervisor operations as rows: claimed with a lease, retried with backoff (occi.jobs)
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String, nullable=False),
    sa.Column("entity_id", sa.String, nullable=False),
    sa.Column("operation", sa.String, nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("owner", sa.String, nullable=True),
    sa.Column("lease_expires", sa.Float, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("not_before", sa.Float, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("project_id", sa.String, nullable=False, server_default=DEFAULT_PROJECT),
    sa.UniqueConstraint("id", name="uq_jobs_id"),
    sa.Index("ix_jobs_status_seq", "status", "seq"),
    sa.Index("ix_jobs_entity_status", "entity_id", "status"),
    sqlite_autoincrement=True,
)

# -- identity (migration 0005; occi.identity.store reads and writes these) ---------------------

#: tenants: every entity, job and user mixin belongs to one
projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("name", name="uq_projects_name"),
)

#: people and programs: local (argon2id password hash), federated (OIDC issuer and subject)
#: or by certificate (X.509 subject DN); API tokens work for any of them
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("password_hash", sa.String, nullable=True),
    sa.Column("oidc_issuer", sa.String, nullable=True),
    sa.Column("oidc_subject", sa.String, nullable=True),
    sa.Column("x509_dn", sa.String, nullable=True),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("name", name="uq_users_name"),
    sa.UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc"),
    sa.UniqueConstraint("x509_dn", name="uq_users_x509_dn"),
)

#: who may do what where: `member` and `reader` on one project; `admin` is global, stored
#: with no project (project_id NULL), and only `admin` is
role_assignments = sa.Table(
    "role_assignments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "user_id",
        sa.String,
        sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_role_assignments_user"),
        nullable=False,
    ),
    sa.Column(
        "project_id",
        sa.String,
        sa.ForeignKey("projects.id", ondelete="CASCADE", name="fk_role_assignments_project"),
        nullable=True,
    ),
    sa.Column("role", sa.String, nullable=False),
    sa.CheckConstraint(
        "(role = 'admin' AND project_id IS NULL) OR "
        "(role IN ('member', 'reader') AND project_id IS NOT NULL)",
        name="ck_role_assignments_scope",
    ),
    sa.UniqueConstraint("user_id", "project_id", "role", name="uq_role_assignments"),
    # NULLs are distinct in the constraint above: one global admin row per user by this index
    sa.Index(
        "uq_role_assignments_global",
        "user_id",
        "role",
        unique=True,
        sqlite_where=sa.text("project_id IS NULL"),
        postgresql_where=sa.text("project_id IS NULL"),
    ),
    sa.Index("ix_role_assignments_project", "project_id"),
)

#: API tokens: only the SHA-256 of the random secret is kept; the token is shown once
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column(
        "user_id",
        sa.String,
        sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_tokens_user"),
        nullable=False,
    ),
    sa.Column(
        "project_id",
        sa.String,
        sa.ForeignKey("projects.id", ondelete="CASCADE", name="fk_tokens_project"),
        nullable=True,
    ),
    sa.Column("hash", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_tokens_user", "user_id"),
)

#: per-project limits set by an administrator (-1: unlimited); a resource without a row
#: follows the quota_* settings
quotas = sa.Table(
    "quotas",
    metadata,
    sa.Column(
        "project_id",
        sa.String,
        sa.ForeignKey("projects.id", ondelete="CASCADE", name="fk_quotas_project"),
        primary_key=True,
    ),
    sa.Column("resource", sa.String, primary_key=True),
    sa.Column("limit", sa.BigInteger, nullable=False),
)

#: the web console's sessions (occi.console.sessions): only the SHA-256 of the cookie's random
#: value is kept, with the session's CSRF token and the project it acts in
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column(
        "user_id",
        sa.String,
        sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_console_sessions_user"),
        nullable=False,
    ),
    sa.Column("project_id", sa.String, nullable=True),
    sa.Column("csrf", sa.String, nullable=False),
    #: roles the login brought beside the stored ones (an OIDC token's entitlements), JSON
    sa.Column("grants", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_console_sessions_user", "user_id"),
)

CATEGORIES_VERSION = "categories_version"
#: PostgreSQL NOTIFY channel telling every server that the categories changed
CATEGORIES_CHANNEL = "occi_categories"
#: PostgreSQL NOTIFY channel on which the entities table announces its changes (migration 0004)
ENTITIES_CHANNEL = "occi_entities"
ENTITIES_TRIGGER = "occi_entities_changed"
#: application_name of each process's LISTEN connection (pg_stat_activity)
LISTENER_NAME = "occi-server listener"
#: rows of one-entity reads each process keeps on PostgreSQL (occi.store.cache)
ENTITY_CACHE_SIZE = 10_000

#: occi.core.* names are first-class columns, not rows of entity_attributes; filters map them.
CORE_COLUMNS = {
    "occi.core.id": entities.c.id,
    "occi.core.title": entities.c.title,
    "occi.core.summary": entities.c.summary,
    "occi.core.source": entities.c.source,
    "occi.core.target": entities.c.target,
}

# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """The JSON value with integral floats as ints, so 2 and 2.0 compare equal."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        return value
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return str(value)


def value_key(value: Any) -> str:
    """A canonical string for an attribute value, used for equality filters in SQL.

    Strings, numbers, booleans and null give distinct keys ('"2"', '2', 'true', 'null'); 2 and
    2.0 give the same. Long values become a digest (prefix '#', which JSON never starts with).
    """
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(text) > VALUE_KEY_MAX:
        return "#sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text


def _state_of(key: str | None) -> str | None:
    """A state attribute's value from its value key; None when the entity has none."""
    if key is None or key == "null":
        return None
    if key.startswith("#"):  # a digest of a long value: no state anyone names
        return "other"
    value = json.loads(key)
    return value if isinstance(value, str) else key


_ABSENT = object()  # no value at all (None is a value)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _now() -> datetime:
    return datetime.now(UTC)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _attr_def_to_json(d: AttributeDef) -> dict[str, Any]:
    return {
        "name": d.name,
        "type": d.type,
        "mutable": d.mutable,
        "required": d.required,
        "default": d.default,
        "description": d.description,
        "pattern": d.pattern,
        "enum": list(d.enum),
        "minimum": d.minimum,
        "maximum": d.maximum,
    }


def _attr_def_from_json(raw: dict[str, Any]) -> AttributeDef:
    return AttributeDef(
        name=raw["name"],
        type=raw.get("type") or "string",
        mutable=bool(raw.get("mutable", True)),
        required=bool(raw.get("required", False)),
        default=raw.get("default"),
        description=raw.get("description"),
        pattern=raw.get("pattern"),
        enum=tuple(raw.get("enum") or ()),
        minimum=raw.get("minimum"),
        maximum=raw.get("maximum"),
    )


def normalise_url(url: str) -> sa.URL:
    """Parse a database URL; plain postgresql:// (or postgres://) means psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = sa.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


# ---------------------------------------------------------------------------------------------
# The transaction
# ---------------------------------------------------------------------------------------------


#: a resource's outgoing links, joined to it in one statement (get, stream)
_LINKS = entities.alias("l")
#: the link columns a rendering needs (not the timestamps): fewer columns, less to decode
_LINK_LABELS = [
    (name, f"l_{name}") for name in entities.c.keys() if name not in ("created_at", "updated_at")
]
_LINK_COLUMNS = [_LINKS.c[name].label(label) for name, label in _LINK_LABELS]


# The hot path's statement, built once: SQLAlchemy's statement building costs more than the
# query itself (a GET of one entity).
_ENTITY_COLUMNS = [c for c in entities.c if c.name not in ("created_at", "updated_at")]
_GET = (
    sa.select(*_ENTITY_COLUMNS, *_LINK_COLUMNS)
    .select_from(entities.outerjoin(_LINKS, _LINKS.c.source_id == entities.c.id))
    .where(entities.c.id == sa.bindparam("entity_id"))
    .order_by(_LINKS.c.seq)
)
_GET_FOR_UPDATE = _GET.with_for_update(of=entities)
_ENTITY_NAMES = tuple(c.name for c in _ENTITY_COLUMNS)
_LINK_NAMES = tuple(name for name, _ in _LINK_LABELS)
assert _ENTITY_NAMES == _LINK_NAMES  # rows of _GET and stream(): entity columns, then its link's
#: where each column sits in a row of _ENTITY_COLUMNS (read by position: no Row lookups)
_AT = {name: i for i, name in enumerate(_ENTITY_NAMES)}
#: distinct mixin lists remembered while decoding one listing (entities share a few lists)
_MIXIN_MEMO_SIZE = 1024
#: where the placement columns sit in a row of _ENTITY_COLUMNS
_I_PLACEMENT = tuple(
    _AT[name]
    for name in (
        "zone_id",
        "cluster_id",
        "host_id",
        "reserved_cores",
        "reserved_memory_mb",
        "platform_ref",
    )
)


def _placement_of(v: Sequence[Any], o: int = 0) -> Placement | None:
    """The placement in row `v` (entity columns from `o`), or None for an unplaced entity.
    The host's name and address come from the inventory map (occi.inventory.pool)."""
    zone, cluster, host, cores, memory, ref = (v[o + i] for i in _I_PLACEMENT)
    if zone is None and cluster is None and ref is None:
        return None
    return Placement(
        zone_id=zone,
        cluster_id=cluster,
        host_id=host,
        reserved_cores=cores,
        reserved_memory_mb=memory,
        platform_ref=ref,
    )


#: the columns _entity_from_values makes an entity of
_MADE_OF = (
    "id",
    "kind",
    "location",
    "title",
    "summary",
    "attributes",
    "mixins",
    "source_id",
    "source",
    "target",
    "source_kind",
    "target_kind",
    "version",
    "project_id",
)
(
    _I_ID,
    _I_KIND,
    _I_LOCATION,
    _I_TITLE,
    _I_SUMMARY,
    _I_ATTRIBUTES,
    _I_MIXINS,
    _I_SOURCE_ID,
    _I_SOURCE,
    _I_TARGET,
    _I_SOURCE_KIND,
    _I_TARGET_KIND,
    _I_VERSION,
    _I_PROJECT,
) = (_AT[name] for name in _MADE_OF)
_decode_json = json.JSONDecoder().decode


def _entity_from_values(
    v: Sequence[Any],
    o: int = 0,
    memo: dict[str, list[str]] | None = None,
    placed: bool = True,
) -> Entity:
    """The entity in the _ENTITY_COLUMNS of row `v` starting at `o`, read by position; `memo`
    keeps the mixin lists already decoded in this listing (each entity gets its own copy).
    `placed` False: the row is a page's (_PAGE_COLUMNS), which stops before the placement."""
    raw = v[o + _I_ATTRIBUTES]
    attributes = _decode_json(raw) if raw and raw != "{}" else {}
    raw = v[o + _I_MIXINS]
    if not raw or raw == "[]":
        mixins: list[str] = []
    elif memo is None:
        mixins = _decode_json(raw)
    else:
        known = memo.get(raw)
        if known is None:
            known = _decode_json(raw)
            if len(memo) < _MIXIN_MEMO_SIZE:
                memo[raw] = known
        mixins = list(known)
    if v[o + _I_SOURCE_ID] is None:
        return Resource(
            kind=v[o + _I_KIND],
            id=v[o + _I_ID],
            title=v[o + _I_TITLE],
            mixins=mixins,
            attributes=attributes,
            location=v[o + _I_LOCATION],
            summary=v[o + _I_SUMMARY],
            version=v[o + _I_VERSION],
            project=v[o + _I_PROJECT],
            placement=_placement_of(v, o) if placed else None,
        )
    return Link(
        kind=v[o + _I_KIND],
        id=v[o + _I_ID],
        title=v[o + _I_TITLE],
        mixins=mixins,
        attributes=attributes,
        location=v[o + _I_LOCATION],
        source=v[o + _I_SOURCE],
        target=v[o + _I_TARGET],
        source_kind=v[o + _I_SOURCE_KIND],
        target_kind=v[o + _I_TARGET_KIND],
        version=v[o + _I_VERSION],
        project=v[o + _I_PROJECT],
    )


#: where update()'s columns are in a _GET row
_UPDATE_INDEXES = tuple(
    _ENTITY_NAMES.index(n) for n in ("seq", "source", "source_id", "attributes", "mixins")
)


class _Locked(NamedTuple):
    """An entity's row as read for update (what update() needs of it)."""

    seq: int
    source: str | None
    source_id: str | None
    attributes: str | None
    mixins: str | None


class _LinkRow(dict[str, Any]):
    """A link's columns out of a joined row, read by attribute like a Row."""

    def __getattr__(self, name: str) -> Any:
        return self[name]


class _DriverStatement:
    """A prebuilt read run straight on the DB-API cursor: plain tuples back, none of a
    Result's set-up. On the hot path (GET of one entity) that set-up costs more than the
    query: psycopg builds a column description object per column on every execution.

    Still visible to SQLAlchemy's cursor events (statement counting, tracing), and driver
    errors come out as SQLAlchemy's exceptions, with a dropped connection invalidated, exactly
    as Connection.execute does."""

    def __init__(self, stmt: sa.ClauseElement):
        self.stmt = stmt
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def _sql(self, dialect: sa.Dialect) -> tuple[str, tuple[str, ...] | None]:
        done = self._compiled.get(dialect.name)
        if done is None:
            compiled: Any = self.stmt.compile(dialect=dialect)  # an SQLCompiler
            names = tuple(compiled.positiontup or ()) if compiled.positional else None
            done = self._compiled[dialect.name] = (str(compiled), names)
        return done

    def rows(self, conn: Connection, params: dict[str, Any]) -> Rows:
        sql, names = self._sql(conn.dialect)
        args: Any = tuple(params[n] for n in names) if names is not None else params
        dbapi_conn: Any = conn.connection.dbapi_connection
        cursor = dbapi_conn.cursor()
        try:
            conn.dispatch.before_cursor_execute(conn, cursor, sql, args, None, False)
            cursor.execute(sql, args)
            return cursor.fetchall()
        except conn.dialect.loaded_dbapi.Error as exc:
            if conn.dialect.is_disconnect(exc, dbapi_conn, cursor):
                conn.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                sql, args, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
            ) from exc
        finally:
            cursor.close()


_GET_DRIVER = _DriverStatement(_GET)
_GET_FOR_UPDATE_DRIVER = _DriverStatement(_GET_FOR_UPDATE)


def _page_select(in_project: bool, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """`columns` of a page of one kind (the commonest collection read) in seq order, with the
    kind, project (`in_project`) and page as parameters: what SqlTx would build for it."""
    e = entities.c
    kind = sa.bindparam("kind", type_=sa.String())
    where: list[sa.ColumnElement[bool]] = [e.kind.between(kind, kind)]  # see _listing
    if in_project:
        where.append(e.project_id == sa.bindparam("project", type_=sa.String()))
    return (
        sa.select(*columns)
        .where(*where)
        .order_by(e.kind, e.seq)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
        .offset(sa.bindparam("offset", type_=sa.Integer()))
    )


def _page_of_locations(in_project: bool) -> _DriverStatement:
    """A page of one kind's locations, prebuilt (SqlTx.locations)."""
    return _DriverStatement(_page_select(in_project, entities.c.location))


_PAGE_OF_LOCATIONS = {True: _page_of_locations(True), False: _page_of_locations(False)}


def _upserts() -> dict[str, Any]:
    from sqlalchemy.dialects import sqlite

    out: dict[str, Any] = {}
    for name, insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert)):
        stmt = insert(entity_attributes)
        out[name] = stmt.on_conflict_do_update(
            index_elements=[entity_attributes.c.entity_seq, entity_attributes.c.name],
            set_={"value_key": stmt.excluded.value_key},
        )
    return out


#: an attribute's index row, inserted or replaced (see SqlTx._upsert_index)
_UPSERT_ATTRIBUTE = _upserts()


def _record_attributes() -> sa.Update:
    e = entities.c
    # written out, qualified (see _INSERTED): links whose source or target is this entity
    linked: sa.ColumnElement[bool] = sa.literal_column(
        "EXISTS (SELECT 1 FROM entities AS touching WHERE touching.source_id IS NOT NULL"
        " AND (touching.source_id = entities.id OR touching.target = entities.location))"
    )
    return (
        entities.update()
        .where(e.id == sa.bindparam("entity_id"), e.version == sa.bindparam("seen"))
        .values(
            attributes=sa.bindparam("attributes"),
            version=e.version + 1,
            updated_at=sa.bindparam("updated_at"),
            # a backend's reference to the platform object comes with a create's outcome
            platform_ref=sa.func.coalesce(
                sa.bindparam("platform_ref", type_=sa.Text), e.platform_ref
            ),
        )
        .returning(e.seq, e.version, linked.label("linked"))
    )


#: SqlTx.record_attributes's guarded UPDATE: the entity's new version, and whether links touch it
_RECORD_ATTRIBUTES = _record_attributes()

#: the columns of an audit event (occi.identity.audit.event_values)
_EVENT_COLUMNS = (
    "at",
    "user_name",
    "project_id",
    "request_id",
    "operation",
    "entity",
    "status",
    "result",
)


def _record_statement(alone: bool) -> sa.TextClause:
    """_RECORD_AND_FINISH, or (`alone`) _RECORD_ALONE: the same statement, the latter with the
    job's row locked first (`lk`) and the entity changed only when that lock was had and no
    link touches it."""
    touching = """EXISTS (SELECT 1 FROM entities AS touching WHERE touching.source_id IS NOT NULL
            AND (touching.source_id = entities.id OR touching.target = entities.location))"""
    mine = "jobs.id = :job_id AND jobs.owner = :owner AND jobs.status = 'running'"
    lock = f"lk AS (\n  SELECT jobs.id FROM jobs WHERE {mine}\n  FOR UPDATE\n), " if alone else ""
    guard = f"\n    AND EXISTS (SELECT 1 FROM lk)\n    AND NOT {touching}" if alone else ""
    linked = "false" if alone else touching
    job = "jobs.id IN (SELECT lk.id FROM lk)" if alone else mine
    return sa.text(
        f"""
WITH {lock}e AS (
  UPDATE entities SET attributes = :attributes, version = entities.version + 1,
    updated_at = :updated_at,
    platform_ref = COALESCE(CAST(:platform_ref AS VARCHAR), entities.platform_ref)
  WHERE entities.id = :entity_id AND entities.version = :seen{guard}
  RETURNING entities.seq, entities.version, {linked} AS linked
), a AS (
  INSERT INTO entity_attributes (entity_seq, name, value_key)
  SELECT e.seq, k.name, k.value_key
  FROM e, unnest(CAST(:names AS VARCHAR[]), CAST(:keys AS VARCHAR[])) AS k(name, value_key)
  ON CONFLICT (entity_seq, name) DO UPDATE SET value_key = excluded.value_key
), j AS (
  UPDATE jobs SET status = 'done', lease_expires = NULL, updated_at = :job_updated_at,
    error = NULL, result = :result
  WHERE {job} AND EXISTS (SELECT 1 FROM e)
  RETURNING jobs.id
), ev AS (
  INSERT INTO events (at, user_name, project_id, request_id, operation, entity, status, result)
  SELECT :ev_at, :ev_user_name, :ev_project_id, :ev_request_id, :ev_operation, :ev_entity,
    :ev_status, :ev_result
  FROM j WHERE CAST(:with_event AS BOOLEAN)
)
SELECT e.seq, e.version, e.linked, EXISTS (SELECT 1 FROM j) AS finished FROM e
"""
    ).bindparams(
        sa.bindparam("ev_at", type_=sa.DateTime(timezone=True)),
        sa.bindparam("ev_status", type_=sa.Integer()),
    )


#: PostgreSQL: SqlTx.record_and_finish in one statement. `e`, the entity's guarded UPDATE (as
#: _RECORD_ATTRIBUTES); `a`, the upsert of its changed index rows; `j`, the job's guarded
#: UPDATE to done, only when `e` changed the entity; `ev`, the audit event, only when `j`
#: finished the job. No row back: the entity moved on (nothing changed at all).
_RECORD_AND_FINISH = _record_statement(alone=False)
#: run on the DB-API cursor (see _DriverStatement)
_RECORD_AND_FINISH_DRIVER = _DriverStatement(_RECORD_AND_FINISH)

#: PostgreSQL: SqlTx.record_alone, _RECORD_AND_FINISH made safe to run in autocommit, where no
#: rollback can undo a part: `lk` locks the job's row when it is still this server's (so
#: nobody can take the job over before the statement ends), the entity changes only then and
#: only when no link touches it (whose states would have to follow in the same transaction),
#: the job is finished only when the entity changed. Either everything or nothing.
_RECORD_ALONE = _record_statement(alone=True)
_RECORD_ALONE_DRIVER = _DriverStatement(_RECORD_ALONE)


def _record_params(
    entity: Entity,
    changes: dict[str, Any],
    job: Job,
    result: dict[str, Any],
    platform_ref: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The entity's attributes after `changes`, and the parameters of _RECORD_AND_FINISH and
    _RECORD_ALONE."""
    assert job.owner is not None, "only a claimed job is finished"
    attributes = {**entity.attributes, **changes}
    keys = _changed_keys(entity.attributes, changes)
    event = job.event or {}
    return attributes, {
        "entity_id": entity.id,
        "seen": entity.version,
        "attributes": _dumps(attributes),
        "updated_at": _now(),
        "platform_ref": platform_ref,
        "names": list(keys),
        "keys": list(keys.values()),
        "job_id": job.id,
        "owner": job.owner,
        "job_updated_at": time.time(),
        "result": json.dumps(result, separators=(",", ":")),
        "with_event": job.event is not None,
        **{f"ev_{c}": event.get(c) for c in _EVENT_COLUMNS},
    }


#: an audit event's INSERT (SqlTx.add_event)
_INSERT_EVENT = events.insert()


def _recordable(entity: Entity, changes: dict[str, Any]) -> bool:
    """Whether record_attributes can store `changes` into `entity` unread: it knows the
    version it saw, and the changes are plain attributes with values."""
    return (
        entity.version is not None
        and bool(changes)
        and not any(v is None or n in CORE_COLUMNS for n, v in changes.items())
    )


def _changed_keys(old: dict[str, Any], changes: dict[str, Any]) -> dict[str, str]:
    """The index keys of the attributes `changes` changes from `old` (name -> value key)."""
    return {
        n: value_key(v)
        for n, v in changes.items()
        if n not in old or value_key(old[n]) != value_key(v)
    }


#: what a create's INSERT returns: its seq, its project, and whether that project has quotas of
#: its own (so the quota check of the same transaction needs no statement when it has none)
#: (written out: SQLAlchemy leaves the columns of a RETURNING clause unqualified on SQLite, where
#: a subquery would then read its own table's columns)
_INSERTED: tuple[sa.ColumnElement[Any], ...] = (
    entities.c.seq,
    entities.c.project_id,
    sa.literal_column(
        "(SELECT count(*) FROM quotas WHERE quotas.project_id = entities.project_id)"
    ),
)

#: prebuilt (building and keying a statement costs more than SQLite takes to run it): a create's
#: INSERT (the columns are those of the parameters) and its index rows
_INSERT_RETURNING = entities.insert().returning(*_INSERTED)
_INSERT_MIXINS = entity_mixins.insert()
_INSERT_ATTRIBUTES = entity_attributes.insert()


@functools.lru_cache(maxsize=64)
def _insert_with_index(columns: tuple[str, ...]) -> _DriverStatement:
    """PostgreSQL: a create's INSERT of the entity's `columns` (named as the parameters) with
    its index rows, in ONE statement: `e` inserts the entity and returns what _INSERTED
    returns, `m` and `a` insert the mixins' and the attributes' rows on e's new seq, from
    arrays (:index_mixins; :index_names with :index_keys). Three statements in one round trip,
    run on the DB-API cursor (a create's hottest statement)."""
    names = ", ".join(columns)
    values = ", ".join(f":{c}" for c in columns)
    return _DriverStatement(
        sa.text(
            f"""
WITH e AS (
  INSERT INTO entities ({names}) VALUES ({values})
  RETURNING entities.seq, entities.project_id,
    (SELECT count(*) FROM quotas WHERE quotas.project_id = entities.project_id) AS limits
), m AS (
  INSERT INTO entity_mixins (entity_seq, mixin_id)
  SELECT e.seq, x.mixin_id FROM e, unnest(CAST(:index_mixins AS VARCHAR[])) AS x(mixin_id)
), a AS (
  INSERT INTO entity_attributes (entity_seq, name, value_key)
  SELECT e.seq, k.name, k.value_key
  FROM e, unnest(CAST(:index_names AS VARCHAR[]), CAST(:index_keys AS VARCHAR[]))
    AS k(name, value_key)
)
SELECT e.seq, e.project_id, e.limits FROM e
"""
        )
    )


def _plain_page(q: Query) -> dict[str, Any] | None:
    """The parameters of a prebuilt page statement when q is a page of one kind with no
    other filter than the project; else None."""
    if (
        q.limit is None
        or q.kinds is None
        or len(q.kinds) != 1
        or q.mixin is not None
        or q.attributes
        or q.source is not None
    ):
        return None
    return {"kind": q.kinds[0], "project": q.project, "limit": q.limit, "offset": q.offset}


#: what a page's entities are made of: the entity columns up to the last that
#: _entity_from_values reads (the ones after it, placement, are never rendered)
_PAGE_COLUMNS = _ENTITY_COLUMNS[: max(_AT[n] for n in _MADE_OF) + 1]
_PAGE_LINK_COLUMNS = _LINK_COLUMNS[: len(_PAGE_COLUMNS)]


def _with_links(page: sa.Subquery) -> sa.Select[Any]:
    """The _PAGE_COLUMNS of `page` (a subquery) each joined with its outgoing links'
    (_PAGE_LINK_COLUMNS), in the page's seq order, then the links'."""
    return (
        sa.select(*(page.c[c.name] for c in _PAGE_COLUMNS), *_PAGE_LINK_COLUMNS)
        .select_from(page.outerjoin(_LINKS, _LINKS.c.source_id == page.c.id))
        .order_by(page.c.seq, _LINKS.c.seq)
    )


def _page_with_links(in_project: bool) -> _DriverStatement:
    """A page of one kind with its resources' links, prebuilt (SqlTx.stored_page)."""
    return _DriverStatement(_with_links(_page_select(in_project, *_PAGE_COLUMNS).subquery("p")))


_PAGE_WITH_LINKS = {True: _page_with_links(True), False: _page_with_links(False)}
#: SQLite's page without its links, and the links of the page's resources (a JSON array of
#: their ids): two statements in-process cost less than the join
_PAGE_ROWS = {flag: _DriverStatement(_page_select(flag, *_PAGE_COLUMNS)) for flag in (True, False)}
_LINKS_OF_SQLITE = _DriverStatement(
    sa.select(*_PAGE_COLUMNS)
    .where(
        entities.c.source_id.in_(
            sa.select(sa.column("value"))
            .select_from(sa.func.json_each(sa.bindparam("ids", type_=sa.Text())))
            .scalar_subquery()
        )
    )
    .order_by(entities.c.seq)
)


def _stored(rows: Iterable[Sequence[Any]]) -> list[Stored]:
    """Stored entities from rows of _with_links, in order: an entity's rows are consecutive."""
    return list(_iter_stored(rows))


def _iter_stored(rows: Iterable[Sequence[Any]]) -> Iterator[Stored]:
    """_stored, one entity at a time (a stream of any length in bounded memory)."""
    split = len(_PAGE_COLUMNS)
    seq_at, source_at = _AT["seq"], _AT["source_id"]
    link_seq_at = split + seq_at
    values: tuple[Any, ...] | None = None
    links: list[tuple[Any, ...]] = []
    for row in rows:
        if values is None or row[seq_at] != values[seq_at]:
            if values is not None:
                yield _one_stored(values, links)
            values, links = tuple(row[:split]), []
        if row[link_seq_at] is not None and values[source_at] is None:  # a resource's link
            links.append(tuple(row[split:]))
    if values is not None:
        yield _one_stored(values, links)


_NO_LINKS: list[tuple[Any, ...]] = []


def _one_stored(values: tuple[Any, ...], links: list[tuple[Any, ...]]) -> Stored:
    return Stored(values[_I_ID], values[_I_SOURCE_ID] is not None, (values, tuple(links)))


def entity_of_stored(rows: tuple[tuple[Any, ...], tuple[tuple[Any, ...], ...]]) -> Entity:
    """The entity (a resource with its links) of a Stored's rows from SqlTx.stored_page."""
    values, links = rows
    entity = _entity_from_values(values, placed=False)
    if isinstance(entity, Resource):
        memo: dict[str, list[str]] = {}
        entity.links.extend(_entity_from_values(lv, 0, memo, False) for lv in links)  # type: ignore[misc]
    return entity


class SqlTx(StoreTx):
    """One transaction on one connection; every method works in SQL, in bulk."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._pg = conn.dialect.name == "postgresql"
        self._jobs: SqlJobTx | None = None
        self.categories_bumped = False
        #: set by every write to the entities table: the store drops its cache at commit
        self.entities_changed = False
        #: entity id -> its row (seq, source, source_id, attributes, mixins) as read for update
        #: in this transaction: locked, so update() needs not read it again
        self._locked: dict[str, tuple[Any, ...]] = {}
        #: projects that have no quota rows, as an INSERT of this transaction found
        self._without_limits: set[str] = set()

    @property
    def jobs(self) -> SqlJobTx:
        if self._jobs is None:
            self._jobs = SqlJobTx(self.conn, jobs, servers, entities)
        return self._jobs

    @property
    def usage(self) -> SqlUsageTx:
        return SqlUsageTx(self.conn, entities, projects, quotas, self._without_limits)

    # -- helpers -----------------------------------------------------------------------------

    def _in(self, column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
        """`column IN values` with ONE bound parameter, whatever the number of values (an array
        on PostgreSQL, a JSON array expanded by json_each on SQLite): no parameter limits.
        One value is plain equality, so the planner can walk an index in order (a page of one
        kind by (kind, seq))."""
        if len(values) == 1:
            return column == values[0]
        if self._pg:
            elem_type = sa.Integer() if isinstance(column.type, sa.Integer) else sa.String()
            return column == sa.any_(
                sa.bindparam(None, list(values), type_=postgresql.ARRAY(elem_type))
            )
        each: sa.Select[Any] = sa.select(sa.column("value")).select_from(
            sa.func.json_each(sa.bindparam(None, _dumps(list(values)), type_=sa.Text()))
        )
        return column.in_(each.scalar_subquery())

    def _where(
        self, q: Query, *, mixin: bool = True, kind_range: bool = False
    ) -> list[sa.ColumnElement[bool]]:
        e = entities.c
        clauses: list[sa.ColumnElement[bool]] = []
        if q.kinds is not None:
            if kind_range and len(q.kinds) == 1:
                (kind,) = q.kinds
                clauses.append(e.kind.between(kind, kind))  # see _listing
            else:
                clauses.append(e.kind.in_(list(q.kinds)))
        if mixin and q.mixin is not None:
            clauses.append(
                e.seq.in_(
                    sa.select(entity_mixins.c.entity_seq).where(entity_mixins.c.mixin_id == q.mixin)
                )
            )
        for name, value in (q.attributes or {}).items():
            column = CORE_COLUMNS.get(name)
            if column is not None:
                clauses.append(column == value if isinstance(value, str) else sa.false())
                continue
            clauses.append(
                e.seq.in_(
                    sa.select(entity_attributes.c.entity_seq).where(
                        entity_attributes.c.name == name,
                        entity_attributes.c.value_key == value_key(value),
                    )
                )
            )
        if q.source is not None:
            clauses.append(e.source_id == q.source)
        if q.project is not None:
            clauses.append(e.project_id == q.project)
        return clauses

    @staticmethod
    def _to_entity(row: Row[Any] | _LinkRow) -> Entity:
        attributes = json.loads(row.attributes) if row.attributes else {}
        mixins = json.loads(row.mixins) if row.mixins else []
        if row.source_id is None:
            placement = None
            if (
                row.cluster_id is not None
                or row.zone_id is not None
                or row.platform_ref is not None
            ):
                placement = Placement(
                    zone_id=row.zone_id,
                    cluster_id=row.cluster_id,
                    host_id=row.host_id,
                    reserved_cores=row.reserved_cores,
                    reserved_memory_mb=row.reserved_memory_mb,
                    platform_ref=row.platform_ref,
                )
            return Resource(
                kind=row.kind,
                id=row.id,
                title=row.title,
                mixins=mixins,
                attributes=attributes,
                location=row.location,
                summary=row.summary,
                version=row.version,
                project=row.project_id,
                placement=placement,
            )
        return Link(
            kind=row.kind,
            id=row.id,
            title=row.title,
            mixins=mixins,
            attributes=attributes,
            location=row.location,
            source=row.source,
            target=row.target,
            source_kind=row.source_kind,
            target_kind=row.target_kind,
            version=row.version,
            project=row.project_id,
        )

    def _attach_links(self, rows: Sequence[Row[Any]]) -> list[Entity]:
        """Entities from rows of _ENTITY_COLUMNS; resources get their outgoing links with ONE
        more statement."""
        memo: dict[str, list[str]] = {}
        out = [_entity_from_values(r, 0, memo) for r in rows]
        resources = {e.id: e for e in out if isinstance(e, Resource)}
        if resources:
            link_rows = self.conn.execute(
                sa.select(*_ENTITY_COLUMNS)
                .where(self._in(entities.c.source_id, list(resources)))
                .order_by(entities.c.seq)
            ).all()
            source_at = _AT["source_id"]
            for lr in link_rows:
                owner = resources.get(lr[source_at])
                if owner is not None:
                    owner.links.append(_entity_from_values(lr, 0, memo))  # type: ignore[arg-type]
        return out

    def _resolve_source(self, source: str | None) -> str:
        """The id of the resource at a link's source location."""
        if not source:
            raise BadRequest("a link needs a source resource (occi.core.source)")
        candidates = [source]
        path = urlsplit(source).path
        if path and path != source:
            candidates.append(path)
        rows = self.conn.execute(
            sa.select(entities.c.location, entities.c.id, entities.c.source_id).where(
                entities.c.location.in_(candidates)
            )
        ).all()
        by_location = {r.location: r for r in rows}
        for c in candidates:
            row = by_location.get(c)
            if row is not None:
                if row.source_id is not None:
                    raise BadRequest(f"the source of a link must be a resource, {c} is a link")
                return row.id
        raise BadRequest(f"the link source {source} is not a resource of this service")

    def _write_index(self, seq: int, mixins: list[str], attributes: dict[str, Any]) -> None:
        if mixins:
            self.conn.execute(_INSERT_MIXINS, [{"entity_seq": seq, "mixin_id": m} for m in mixins])
        if attributes:
            self.conn.execute(
                _INSERT_ATTRIBUTES,
                [
                    {"entity_seq": seq, "name": n, "value_key": value_key(v)}
                    for n, v in attributes.items()
                ],
            )

    def _entity_conflict(self, entity: Entity) -> Conflict:
        taken = self.conn.execute(
            sa.select(entities.c.id, entities.c.location).where(
                sa.or_(entities.c.id == entity.id, entities.c.location == entity.location)
            )
        ).all()
        if any(r.id == entity.id for r in taken):
            return IdTaken(f"an entity with the id {entity.id} exists already; choose another id")
        if taken:
            return Conflict(f"the location {entity.location} is taken by another entity")
        return Conflict(f"the entity {entity.id} conflicts with a stored one")

    # -- reads -------------------------------------------------------------------------------

    def get(self, entity_id: str, *, for_update: bool = False) -> Entity | None:
        """One statement: the entity joined with its outgoing links."""
        stmt = _GET_FOR_UPDATE_DRIVER if for_update else _GET_DRIVER
        rows = stmt.rows(self.conn, {"entity_id": entity_id})
        if for_update and rows:
            self._locked[entity_id] = tuple(rows[0][i] for i in _UPDATE_INDEXES)
        return self._from_tuples(rows)

    @classmethod
    def _from_tuples(cls, rows: Rows) -> Entity | None:
        """One entity from _GET's rows as plain tuples (entity columns, then its link's)."""
        if not rows:
            return None
        split = len(_ENTITY_NAMES)
        entity = cls._to_entity(_LinkRow(zip(_ENTITY_NAMES, rows[0][:split], strict=True)))
        if isinstance(entity, Resource):
            for row in rows:
                if row[split] is not None:  # l.seq: the outer join found a link
                    link = _LinkRow(zip(_LINK_NAMES, row[split:], strict=True))
                    entity.links.append(cls._to_entity(link))  # type: ignore[arg-type]
        return entity

    def _grouped(self, rows: Iterable[Sequence[Any]]) -> Iterator[Entity]:
        """Entities from rows of _ENTITY_COLUMNS joined with their links' (_LINK_COLUMNS), in
        order; read by position."""
        split = len(_ENTITY_NAMES)
        seq_at = _AT["seq"]
        link_seq_at = split + seq_at
        memo: dict[str, list[str]] = {}
        current: Entity | None = None
        current_seq = None
        for row in rows:
            if row[seq_at] != current_seq:
                if current is not None:
                    yield current
                current, current_seq = _entity_from_values(row, 0, memo), row[seq_at]
            if row[link_seq_at] is not None and isinstance(current, Resource):
                current.links.append(_entity_from_values(row, split, memo))  # type: ignore[arg-type]
        if current is not None:
            yield current

    def get_many(self, entity_ids: Iterable[str]) -> dict[str, Entity]:
        ids = _unique(list(entity_ids))
        if not ids:
            return {}
        rows = self.conn.execute(
            sa.select(*_ENTITY_COLUMNS).where(self._in(entities.c.id, ids))
        ).all()
        found: dict[str, Entity] = {}
        for e in self._attach_links(rows):
            assert e.id is not None  # the primary key
            found[e.id] = e
        return found

    def _listing(
        self, q: Query
    ) -> tuple[list[sa.ColumnElement[bool]], list[sa.ColumnElement[Any]]]:
        """Filter and order of a listing without a mixin, in seq order.

        For one kind, the kind is written as a range (`kind BETWEEN k AND k`) and the order as
        (kind, seq): the order of the (kind, seq) index and of no other. With plain equality
        PostgreSQL treats the kind as a constant, sees seq order in the primary key too, and
        for a common kind prefers walking that key and filtering, which reads every row of
        the other kinds stored before the first match (10,000 for a page of computes created
        after 10,000 storages: 4 ms instead of 0.07 ms, growing with the store)."""
        e = entities.c
        if q.kinds is not None and len(q.kinds) == 1:
            return self._where(q, kind_range=True), [e.kind, e.seq]
        return self._where(q), [e.seq]

    def _select_page(
        self, q: Query, columns: Sequence[sa.ColumnElement[Any]] = _ENTITY_COLUMNS
    ) -> sa.Select[Any]:
        """The `columns` of q's matches, in seq order, offset and limit applied."""
        if q.mixin is None:
            where, order = self._listing(q)
            stmt = sa.select(*columns).where(*where).order_by(*order)
        else:
            # Driven by the (mixin_id, entity_seq) index: a page of a large mixin collection
            # streams in seq order instead of collecting every member first.
            m = entity_mixins.c
            stmt = (
                sa.select(*columns)
                .join(entity_mixins, sa.and_(m.entity_seq == entities.c.seq, m.mixin_id == q.mixin))
                .where(*self._where(q, mixin=False))
                .order_by(m.entity_seq)
            )
        if q.offset:
            stmt = stmt.offset(q.offset)
        if q.limit is not None:
            stmt = stmt.limit(q.limit)
        return stmt

    def query(self, q: Query) -> list[Entity]:
        return self._attach_links(self.conn.execute(self._select_page(q)).all())

    def stored_page(self, q: Query) -> list[Stored]:
        """The page read as plain tuples, each entity's `rows` being (its values, its links'
        values): on PostgreSQL ONE statement (one round trip), the page as a subquery joined
        with its resources' links; on SQLite the page, then its resources' links (two
        statements, run in-process, cost less than the join there)."""
        params = _plain_page(q)
        if self._pg:
            if params is not None:
                rows = _PAGE_WITH_LINKS[q.project is not None].rows(self.conn, params)
            else:
                page = self._select_page(q, _PAGE_COLUMNS).subquery("p")
                rows = self.conn.execute(_with_links(page)).all()
            return _stored(rows)
        if params is not None:
            found: Sequence[Sequence[Any]] = _PAGE_ROWS[q.project is not None].rows(
                self.conn, params
            )
        else:
            found = self.conn.execute(self._select_page(q, _PAGE_COLUMNS)).all()
        ids = [r[_I_ID] for r in found if r[_I_SOURCE_ID] is None]
        links: dict[str, list[tuple[Any, ...]]] = {}
        if ids:
            for link in _LINKS_OF_SQLITE.rows(self.conn, {"ids": _dumps(ids)}):
                links.setdefault(link[_I_SOURCE_ID], []).append(tuple(link))
        return [
            _one_stored(tuple(r), links.get(r[_I_ID], _NO_LINKS) if r[_I_SOURCE_ID] is None else [])
            for r in found
        ]

    def locations(self, q: Query) -> list[str]:
        """ONE statement reading only the location column, with query()'s filters, order and
        page (or every match when q.limit is None): no attribute JSON, no links."""
        params = _plain_page(q)
        if params is not None:
            rows = _PAGE_OF_LOCATIONS[q.project is not None].rows(self.conn, params)
            return [loc for (loc,) in rows if loc]  # as SqlStore.locations
        if q.mixin is None:
            where, order = self._listing(q)
            stmt = sa.select(entities.c.location).where(*where).order_by(*order)
        else:
            m = entity_mixins.c
            stmt = (
                sa.select(entities.c.location)
                .join(entity_mixins, sa.and_(m.entity_seq == entities.c.seq, m.mixin_id == q.mixin))
                .where(*self._where(q, mixin=False))
                .order_by(m.entity_seq)
            )
        if q.offset:
            stmt = stmt.offset(q.offset)
        if q.limit is not None:
            stmt = stmt.limit(q.limit)
        return [loc for (loc,) in self.conn.execute(stmt) if loc]

    def stream(self, q: Query, batch: int = 500) -> Iterator[Entity]:
        """Every match of q (offset/limit ignored), resources with their links, from ONE
        statement read `batch` rows at a time: a constant number of statements and bounded
        memory whatever the size of the collection."""
        rows = self._streamed(q, batch, _ENTITY_COLUMNS, _LINK_COLUMNS)
        yield from self._grouped(rows)

    def stored_stream(self, q: Query, batch: int = 500) -> Iterator[Stored]:
        """stream() as Stored of stored_page's shape (its rows compare equal to a page's for
        the same entity), from ONE statement read `batch` rows at a time."""
        yield from _iter_stored(self._streamed(q, batch, _PAGE_COLUMNS, _PAGE_LINK_COLUMNS))

    def _streamed(
        self,
        q: Query,
        batch: int,
        columns: Sequence[sa.ColumnElement[Any]],
        link_columns: Sequence[sa.ColumnElement[Any]],
    ) -> Iterator[Sequence[Any]]:
        """The rows of q's matches (`columns`) each joined with its links' (`link_columns`),
        in seq order, from one statement read a partition of `batch` rows at a time (one
        fetch per partition, not a call per row)."""
        e, ln = entities, _LINKS
        if q.mixin is None:
            joined = e.outerjoin(ln, ln.c.source_id == e.c.id)
            where, order = self._listing(q)
        else:
            m = entity_mixins.c
            joined = e.join(
                entity_mixins, sa.and_(m.entity_seq == e.c.seq, m.mixin_id == q.mixin)
            ).outerjoin(ln, ln.c.source_id == e.c.id)
            where, order = self._where(q, mixin=False), [m.entity_seq]
        stmt = (
            sa.select(*columns, *link_columns)
            .select_from(joined)
            .where(*where)
            .order_by(*order, ln.c.seq)
        )
        result = self.conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
        return (row for part in result.partitions() for row in part)

    def count(self, q: Query) -> int:
        stmt = sa.select(sa.func.count()).select_from(entities).where(*self._where(q))
        return int(self.conn.execute(stmt).scalar_one())

    def count_by_kind_state(self) -> dict[tuple[str, str | None], int]:
        e, a = entities.c, entity_attributes.c
        # occi.<term>.state, the term being what follows '#' in the kind's type identifier
        hash_at = sa.func.strpos(e.kind, "#") if self._pg else sa.func.instr(e.kind, "#")
        state_name = (
            sa.literal_column("'occi.'", sa.String)
            .concat(sa.func.substr(e.kind, hash_at + 1))
            .concat(sa.literal_column("'.state'", sa.String))
        )
        stmt = (
            sa.select(e.kind, a.value_key, sa.func.count())
            .select_from(
                entities.outerjoin(
                    entity_attributes, sa.and_(a.entity_seq == e.seq, a.name == state_name)
                )
            )
            .group_by(e.kind, a.value_key)
        )
        out: dict[tuple[str, str | None], int] = {}
        for kind, key, n in self.conn.execute(stmt).all():
            state = _state_of(key)
            out[(kind, state)] = out.get((kind, state), 0) + int(n)
        return out

    def links_touching(self, entity_ids: Iterable[str]) -> list[Entity]:
        ids = _unique(entity_ids)
        if not ids:
            return []
        rows = self.conn.execute(
            sa.select(entities).where(self._touching(ids)).order_by(entities.c.seq)
        ).all()
        return [self._to_entity(r) for r in rows]

    def _touching(self, ids: list[str]) -> sa.ColumnElement[bool]:
        locations = (
            sa.select(entities.c.location).where(self._in(entities.c.id, ids)).scalar_subquery()
        )
        return sa.and_(
            entities.c.source_id.is_not(None),
            sa.or_(self._in(entities.c.source_id, ids), entities.c.target.in_(locations)),
        )

    # -- writes ------------------------------------------------------------------------------

    def insert(
        self,
        entity: Entity,
        *,
        project_id: str | None = None,
        fresh: bool = False,
        placement: Placement | None = None,
    ) -> None:
        """Store a new entity (with where it was placed, in the same INSERT)."""
        if not entity.id or not entity.location:
            raise ValueError("insert() needs an entity with its id and location set")
        self.entities_changed = True
        now = _now()
        mixins = _unique(entity.mixins)
        attributes = dict(entity.attributes)
        values: dict[str, Any] = {
            "id": entity.id,
            "kind": entity.kind,
            "location": entity.location,
            "title": entity.title,
            "summary": getattr(entity, "summary", None),
            "attributes": _dumps(attributes),
            "mixins": _dumps(mixins),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        if project_id is not None:  # else the column's default: the `default` project
            values["project_id"] = project_id
        if placement is not None:
            values.update(
                zone_id=placement.zone_id,
                cluster_id=placement.cluster_id,
                host_id=placement.host_id,
                reserved_cores=placement.reserved_cores,
                reserved_memory_mb=placement.reserved_memory_mb,
                platform_ref=placement.platform_ref,
            )
        if isinstance(entity, Link):
            values.update(
                source_id=self._resolve_source(entity.source),
                source=entity.source,
                target=entity.target,
                source_kind=entity.source_kind,
                target_kind=entity.target_kind,
            )
        if fresh:  # a new uuid: a conflict is next to impossible, and ends the transaction
            try:
                if self._pg:  # with its index rows, in one statement
                    params = dict(
                        values,
                        index_mixins=mixins,
                        index_names=list(attributes),
                        index_keys=[value_key(v) for v in attributes.values()],
                    )
                    ((seq, project, limits),) = _insert_with_index(tuple(values)).rows(
                        self.conn, params
                    )
                else:
                    seq, project, limits = self.conn.execute(_INSERT_RETURNING, values).one()
            except IntegrityError:
                raise Conflict(f"the entity {entity.id} conflicts with a stored one") from None
            if not limits:  # the quota check needs not read them (the same transaction)
                self._without_limits.add(project)
            if self._pg:
                return
        else:
            try:
                with self.conn.begin_nested():
                    stmt = entities.insert().values(**values)
                    key = self.conn.execute(stmt).inserted_primary_key
                    assert key is not None  # an INSERT of one row has its primary key
                    seq = key[0]
            except IntegrityError:
                raise self._entity_conflict(entity) from None
        self._write_index(seq, mixins, attributes)

    def update(self, entity: Entity) -> None:
        self.entities_changed = True
        locked = self._locked.pop(entity.id or "", None)
        row = (
            _Locked(*locked)
            if locked is not None
            else self.conn.execute(
                sa.select(
                    entities.c.seq,
                    entities.c.source,
                    entities.c.source_id,
                    entities.c.attributes,
                    entities.c.mixins,
                ).where(entities.c.id == entity.id)
            ).first()
        )
        if row is None:
            raise NotFound(f"there is no entity {entity.id}")
        mixins = _unique(entity.mixins)
        attributes = dict(entity.attributes)
        values: dict[str, Any] = {
            "title": entity.title,
            "attributes": _dumps(attributes),
            "mixins": _dumps(mixins),
            "version": entities.c.version + 1,
            "updated_at": _now(),
        }
        if isinstance(entity, Resource):
            values["summary"] = entity.summary
        if isinstance(entity, Link) and row.source_id is not None:
            if entity.source and entity.source != row.source:
                values["source_id"] = self._resolve_source(entity.source)
                values["source"] = entity.source
            values["target"] = entity.target
            values["target_kind"] = entity.target_kind
            if entity.source_kind is not None:
                values["source_kind"] = entity.source_kind
        self.conn.execute(entities.update().where(entities.c.seq == row.seq).values(**values))
        if entity.version is not None:
            entity.version += 1  # as stored (read in this transaction, so it was current)
        self._rewrite_index(
            row.seq,
            json.loads(row.mixins) if row.mixins else [],
            json.loads(row.attributes) if row.attributes else {},
            mixins,
            attributes,
        )

    def _rewrite_index(
        self,
        seq: int,
        old_mixins: list[str],
        old_attributes: dict[str, Any],
        mixins: list[str],
        attributes: dict[str, Any],
    ) -> None:
        """Bring the index rows of an entity from what is stored (its JSON columns, which the
        index rows always mirror) to the new mixins and attributes: only the rows that change
        are deleted and inserted (an action changes two attributes of twenty)."""
        gone = [m for m in old_mixins if m not in mixins]
        added = [m for m in mixins if m not in old_mixins]
        if gone:
            self.conn.execute(
                entity_mixins.delete().where(
                    entity_mixins.c.entity_seq == seq, entity_mixins.c.mixin_id.in_(gone)
                )
            )
        old_keys = {n: value_key(v) for n, v in old_attributes.items()}
        new_keys = {n: value_key(v) for n, v in attributes.items()}
        changed = {n: k for n, k in new_keys.items() if old_keys.get(n, _ABSENT) != k}
        stale = [n for n in old_keys if n not in new_keys]  # changed ones are upserted
        if stale:
            self.conn.execute(
                entity_attributes.delete().where(
                    entity_attributes.c.entity_seq == seq, entity_attributes.c.name.in_(stale)
                )
            )
        if added:
            self.conn.execute(
                entity_mixins.insert(), [{"entity_seq": seq, "mixin_id": m} for m in added]
            )
        self._upsert_index(seq, changed)

    def _upsert_index(self, seq: int, keys: dict[str, str]) -> None:
        """Set these attributes' index rows (name -> value key), new or not: one statement."""
        if keys:
            self.conn.execute(
                _UPSERT_ATTRIBUTE[self.conn.dialect.name],
                [{"entity_seq": seq, "name": n, "value_key": k} for n, k in keys.items()],
            )

    def record_attributes(
        self, entity: Entity, changes: dict[str, Any], *, platform_ref: str | None = None
    ) -> bool | None:
        """Store `changes` (attribute -> new value) into `entity` as this process last saw
        it (its `version`), without reading it first: one guarded UPDATE of its row, one
        upsert of its index rows. None, with nothing changed, when the row moved on since
        (another version, or gone): the caller reads it and updates. Else the entity is
        changed in place as stored (attributes, version) and the answer says whether links
        touch it (whose states follow it)."""
        if not _recordable(entity, changes):
            return None
        attributes = {**entity.attributes, **changes}
        row = self.conn.execute(
            _RECORD_ATTRIBUTES,
            {
                "entity_id": entity.id,
                "seen": entity.version,
                "attributes": _dumps(attributes),
                "updated_at": _now(),
                "platform_ref": platform_ref,
            },
        ).first()
        if row is None:
            return None
        self.entities_changed = True
        old = entity.attributes
        entity.attributes = attributes
        entity.version = row.version
        self._upsert_index(row.seq, _changed_keys(old, changes))
        return bool(row.linked)

    def record_and_finish(
        self,
        entity: Entity,
        changes: dict[str, Any],
        job: Job,
        result: dict[str, Any],
        *,
        platform_ref: str | None = None,
    ) -> tuple[bool | None, bool]:
        """See StoreTx.record_and_finish. On PostgreSQL one statement (_RECORD_AND_FINISH:
        the guarded UPDATE of the entity, the upsert of its changed index rows, the guarded
        UPDATE of the job and its audit event, as data-modifying CTEs): one round trip
        instead of four. On SQLite, where a statement costs no round trip, the statements
        one by one."""
        if self.conn.dialect.name != "postgresql" or not _recordable(entity, changes):
            return super().record_and_finish(
                entity, changes, job, result, platform_ref=platform_ref
            )
        attributes, params = _record_params(entity, changes, job, result, platform_ref)
        rows = _RECORD_AND_FINISH_DRIVER.rows(self.conn, params)
        if not rows:  # moved on since: nothing changed, the job not finished
            return None, False
        _seq, version, linked, finished = rows[0]
        self.entities_changed = True
        entity.attributes = attributes
        entity.version = version
        return bool(linked), bool(finished)

    def record_alone(
        self,
        entity: Entity,
        changes: dict[str, Any],
        job: Job,
        result: dict[str, Any],
        *,
        platform_ref: str | None = None,
    ) -> bool:
        """PostgreSQL, in a transaction of its own (the caller's `begin(single=True)`):
        record_and_finish for an entity no link touches, as one autocommitted statement
        (_RECORD_ALONE), with no BEGIN and COMMIT round trips. True when it stored
        everything; False, with nothing changed at all, when it does not apply here (another
        database, links touch the entity, the entity moved on, the job is not this server's):
        the caller then records in a transaction."""
        if self.conn.dialect.name != "postgresql" or not _recordable(entity, changes):
            return False
        attributes, params = _record_params(entity, changes, job, result, platform_ref)
        rows = _RECORD_ALONE_DRIVER.rows(self.conn, params)
        if not rows:
            return False
        _seq, version, _linked, finished = rows[0]
        assert finished, "the job's row was locked by the statement that found it this server's"
        self.entities_changed = True
        entity.attributes = attributes
        entity.version = version
        return True

    def add_event(self, values: dict[str, Any]) -> None:
        self.conn.execute(_INSERT_EVENT, values)

    def record_platform_ref(self, entity_id: str, ref: str) -> None:
        self.entities_changed = True
        self.conn.execute(
            entities.update().where(entities.c.id == entity_id).values(platform_ref=ref)
        )

    def delete(self, entity_ids: Iterable[str]) -> list[str]:
        ids = _unique(entity_ids)
        if not ids:
            return []
        self.entities_changed = True
        requested = set(ids)
        link_ids = [
            lid
            for lid in self.conn.execute(
                sa.select(entities.c.id).where(self._touching(ids)).order_by(entities.c.seq)
            ).scalars()
            if lid not in requested
        ]
        self._locked.clear()
        self._release_hosts(ids)
        self.conn.execute(entities.delete().where(self._in(entities.c.id, ids + link_ids)))
        return link_ids

    def _release_hosts(self, ids: list[str]) -> None:
        """Give back to their hosts what the entities `ids` reserved there (one statement, in
        the transaction that deletes them; occi.inventory.placement reserved it)."""
        from occi.store.inventory_sql import hosts  # the inventory's tables import this module

        e = entities.c
        placed = sa.and_(e.host_id == hosts.c.id, self._in(e.id, ids))
        total = sa.select(sa.func.count(), sa.func.sum(e.reserved_cores)).where(placed)

        def summed(column: sa.ColumnElement[Any]) -> Any:
            return sa.func.coalesce(
                total.with_only_columns(sa.func.sum(column)).scalar_subquery(), 0
            )

        self.conn.execute(
            hosts.update()
            .where(hosts.c.id.in_(sa.select(e.host_id).where(self._in(e.id, ids))))
            .values(
                used_cores=hosts.c.used_cores - summed(e.reserved_cores),
                used_memory_mb=hosts.c.used_memory_mb - summed(e.reserved_memory_mb),
                vms=hosts.c.vms - total.with_only_columns(sa.func.count()).scalar_subquery(),
            )
        )

    def _rewrite_mixins(self, changes: list[tuple[int, list[str]]]) -> None:
        if not changes:
            return
        self.entities_changed = True
        self._locked.clear()
        self.conn.execute(
            entities.update()
            .where(entities.c.seq == sa.bindparam("b_seq"))
            .values(
                mixins=sa.bindparam("b_mixins"),
                version=entities.c.version + 1,
                updated_at=sa.bindparam("b_now"),
            ),
            [{"b_seq": seq, "b_mixins": _dumps(ms), "b_now": _now()} for seq, ms in changes],
        )

    def associate(self, mixin_id: str, entity_ids: Iterable[str]) -> None:
        ids = _unique(entity_ids)
        if not ids:
            return
        stmt = sa.select(entities.c.seq, entities.c.mixins).where(self._in(entities.c.id, ids))
        if self._pg:
            stmt = stmt.with_for_update()
        changes: list[tuple[int, list[str]]] = []
        for seq, raw in self.conn.execute(stmt).all():
            current = json.loads(raw) if raw else []
            if mixin_id not in current:
                changes.append((seq, [*current, mixin_id]))
        if not changes:
            return
        self._rewrite_mixins(changes)
        self.conn.execute(
            entity_mixins.insert(),
            [{"entity_seq": seq, "mixin_id": mixin_id} for seq, _ in changes],
        )

    def dissociate(
        self,
        mixin_id: str,
        entity_ids: Iterable[str] | None = None,
        *,
        project_id: str | None = None,
    ) -> None:
        has_mixin = (
            sa.exists()
            .where(entity_mixins.c.entity_seq == entities.c.seq)
            .where(entity_mixins.c.mixin_id == mixin_id)
        )
        stmt = sa.select(entities.c.seq, entities.c.mixins).where(has_mixin)
        if project_id is not None:
            stmt = stmt.where(entities.c.project_id == project_id)
        ids: list[str] | None = None
        if entity_ids is not None:
            ids = _unique(entity_ids)
            if not ids:
                return
            stmt = stmt.where(self._in(entities.c.id, ids))
        if self._pg:
            stmt = stmt.with_for_update(of=entities)
        changes = []
        for seq, raw in self.conn.execute(stmt).all():
            current = json.loads(raw) if raw else []
            changes.append((seq, [m for m in current if m != mixin_id]))
        if not changes:
            return
        self._rewrite_mixins(changes)
        delete = entity_mixins.delete().where(entity_mixins.c.mixin_id == mixin_id)
        if project_id is not None:
            delete = delete.where(
                entity_mixins.c.entity_seq.in_(
                    sa.select(entities.c.seq).where(entities.c.project_id == project_id)
                )
            )
        if ids is not None:
            delete = delete.where(
                entity_mixins.c.entity_seq.in_(
                    sa.select(entities.c.seq).where(self._in(entities.c.id, ids))
                )
            )
        self.conn.execute(delete)

    # -- shared counters ---------------------------------------------------------------------

    def categories_version(self) -> int:
        row = self.conn.execute(
            sa.select(meta.c.value).where(meta.c.name == CATEGORIES_VERSION)
        ).first()
        return int(row.value) if row else 0

    def bump_categories_version(self) -> None:
        updated = self.conn.execute(
            meta.update().where(meta.c.name == CATEGORIES_VERSION).values(value=meta.c.value + 1)
        )
        if not updated.rowcount:
            self.conn.execute(meta.insert().values(name=CATEGORIES_VERSION, value=1))
        self.categories_bumped = True
        if self._pg:  # delivered to every listening server when this transaction commits
            self.conn.execute(sa.select(sa.func.pg_notify(CATEGORIES_CHANNEL, "")))

    def take_lease(self, name: str, seconds: float) -> bool:
        now_ms = int(time.time() * 1000)
        until = now_ms + int(seconds * 1000)
        taken = self.conn.execute(
            meta.update().where(meta.c.name == name, meta.c.value < now_ms).values(value=until)
        ).rowcount
        if taken:
            return True
        try:
            with self.conn.begin_nested():
                self.conn.execute(meta.insert().values(name=name, value=until))
            return True
        except IntegrityError:
            return False

    # -- user mixins -------------------------------------------------------------------------

    def user_mixins(self, project_id: str | None = None) -> list[Mixin]:
        return [m for _, m in self._user_mixin_rows(project_id)]

    def user_mixins_by_project(self) -> dict[str, list[Mixin]]:
        out: dict[str, list[Mixin]] = {}
        for project_id, m in self._user_mixin_rows(None):
            out.setdefault(project_id, []).append(m)
        return out

    def _user_mixin_rows(self, project_id: str | None) -> list[tuple[str, Mixin]]:
        """(owning project, mixin), oldest first, of one project or (None) of all; one
        statement."""
        stmt = sa.select(user_mixins).order_by(user_mixins.c.created_at, user_mixins.c.id)
        if project_id is not None:
            stmt = stmt.where(user_mixins.c.project_id == project_id)
        out = []
        for r in self.conn.execute(stmt).all():
            defs = [_attr_def_from_json(d) for d in json.loads(r.attributes or "[]")]
            mixin = Mixin(
                scheme=r.scheme,
                term=r.term,
                title=r.title,
                attributes={d.name: d for d in defs},
                depends=tuple(json.loads(r.depends or "[]")),
                applies=tuple(json.loads(r.applies or "[]")),
                location=r.location,
                user_defined=True,
            )
            out.append((r.project_id, mixin))
        return out

    def add_user_mixin(self, mixin: Mixin, *, project_id: str | None = None) -> None:
        values: dict[str, Any] = {
            "id": mixin.id,
            "scheme": mixin.scheme,
            "term": mixin.term,
            "title": mixin.title,
            "location": mixin.location,
            "depends": _dumps(list(mixin.depends)),
            "applies": _dumps(list(mixin.applies)),
            "attributes": _dumps([_attr_def_to_json(d) for d in mixin.attributes.values()]),
            "created_at": _now(),
        }
        if project_id is not None:
            values["project_id"] = project_id
        try:
            with self.conn.begin_nested():
                self.conn.execute(user_mixins.insert().values(**values))
        except IntegrityError:
            same_id = self.conn.execute(
                sa.select(user_mixins.c.id).where(
                    user_mixins.c.id == mixin.id,
                    user_mixins.c.project_id == (project_id or DEFAULT_PROJECT),
                )
            ).first()
            if same_id is not None:
                raise Conflict(f"the mixin {mixin.id} is defined already") from None
            raise Conflict(
                f"the location {mixin.location} is taken by another mixin; choose another"
            ) from None

    def delete_user_mixin(self, project_id: str, mixin_id: str) -> bool:
        result = self.conn.execute(
            user_mixins.delete().where(
                user_mixins.c.project_id == project_id, user_mixins.c.id == mixin_id
            )
        )
        if not result.rowcount:
            return False
        self.dissociate(mixin_id, None, project_id=project_id)
        return True


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys and a busy timeout on every connection; SQLAlchemy emits BEGIN itself
    (BEGIN IMMEDIATE by default) so reads inside a write transaction never hit SQLITE_BUSY on
    the lock upgrade and savepoints belong to the transaction."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys = ON")
            deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
            while True:
                try:
                    cur.execute("PRAGMA journal_mode = WAL")
                    break
                except Exception as exc:  # sqlite3.OperationalError: database is locked
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        begin = conn.get_execution_options().get("occi_sqlite_begin", "BEGIN IMMEDIATE")
        if begin:  # "" = autocommit: a single read statement needs no transaction
            conn.exec_driver_sql(begin)


class SqlStore(Store):
    """The store on one SQLAlchemy engine. Safe to share between threads; one per process."""

    def __init__(self, url: str, *, entity_cache: int = ENTITY_CACHE_SIZE, **engine_kwargs: Any):
        """`entity_cache`: how many reads (one entity's, a page's) each process keeps in memory
        (0: none; see occi.store.cache). An in-memory SQLite database keeps none."""
        self.url = normalise_url(url)
        backend = self.url.get_backend_name()
        kwargs = dict(engine_kwargs)
        if backend == "sqlite":
            connect_args = dict(kwargs.pop("connect_args", {}))
            connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
            kwargs["connect_args"] = connect_args
            if self.url.database in (None, "", ":memory:"):
                connect_args.setdefault("check_same_thread", False)
                kwargs.setdefault("poolclass", sa.StaticPool)
        elif backend == "postgresql":
            # no pre-ping round trip per checkout: a connection dropped by a database restart
            # fails one request (503), and SQLAlchemy then renews the whole pool
            kwargs.setdefault("pool_recycle", 1800)
            connect_args = dict(kwargs.pop("connect_args", {}))
            connect_args.setdefault("connect_timeout", 10)
            kwargs["connect_args"] = connect_args
        else:
            raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
        self.engine: Engine = sa.create_engine(self.url, **kwargs)
        # single-statement reads on PostgreSQL: connections that stay in autocommit, so a read
        # costs one round trip (no BEGIN/ROLLBACK, no switching the connection's mode)
        self._read_engine: Engine = self.engine
        if backend == "postgresql":
            self._read_engine = sa.create_engine(
                self.url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **kwargs
            )
        self.dialect = backend
        self._signal_path: str | None = None
        if backend == "sqlite" and self.url.database not in (None, "", ":memory:"):
            self._signal_path = os.path.abspath(self.url.database) + "-categories"
        self._listener_started = False
        self._listener_lock = threading.Lock()
        self._listening = False
        self._notifications = 0
        self._closed = False
        self.health = Reachability(
            on_lost=self._drop_connections if backend == "postgresql" else None
        )
        self._cache: EntityCache | None = None
        self._changes: SqliteChanges | None = None
        if backend == "postgresql" and entity_cache > 0:
            self._cache = EntityCache(entity_cache)  # on while the listener hears the trigger
        elif self._signal_path is not None and entity_cache > 0:  # SQLite in a file
            self._cache = EntityCache(entity_cache)
            self._cache.enable(True)
            self._changes = SqliteChanges(
                os.path.abspath(self.url.database or ""), SQLITE_BUSY_TIMEOUT_MS / 1000
            )
        if backend == "sqlite":
            _configure_sqlite(self.engine)

    def __repr__(self) -> str:
        return f"<SqlStore {self.url.render_as_string(hide_password=True)}>"

    @contextmanager
    def begin(self, *, readonly: bool = False, single: bool = False) -> Iterator[SqlTx]:
        """A transaction. `readonly=True` lets SQLite readers run beside a writer (a deferred
        BEGIN); every other transaction takes SQLite's write lock at BEGIN. `single=True` is
        for one statement (a read, or one write that is atomic on its own, like an audit
        event's INSERT): no BEGIN/COMMIT round trips at all (autocommit)."""
        try:
            engine = self._read_engine if single else self.engine
            with engine.connect() as conn:
                if single and self.dialect == "sqlite":
                    conn.execution_options(occi_sqlite_begin="")
                elif readonly and self.dialect == "sqlite":
                    conn.execution_options(occi_sqlite_begin="BEGIN")
                with conn.begin():
                    tx = SqlTx(conn)
                    yield tx
            self.health.ok()
            if tx.categories_bumped:
                self._signal_categories()
            if tx.entities_changed and self._cache is not None:
                self._cache.flush()  # read-your-writes at once; other processes see it too
        except IntegrityError as exc:
            raise Conflict(f"the change conflicts with stored data: {exc.orig}") from exc
        except OperationalError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: OperationalError) -> ServiceUnavailable:
        """What a client gets for a database error: 503. Counted, and logged once per outage."""
        metrics.database_error()
        if is_outage(exc):
            self.health.failed(exc)  # logged once per outage, not once per transaction
        else:
            log.warning("database error: %s", describe_failure(exc))
        return ServiceUnavailable("the database is unavailable; try again shortly")

    def _current_cache(self, fresh: bool) -> EntityCache | None:
        """The read cache, up to date, for a read that may use it; None when the read must go
        to the database (`fresh`, or no cache). On SQLite this is where the cache is dropped
        after a commit (SqliteChanges); on PostgreSQL the listener does that."""
        cache = self._cache
        if cache is None or fresh:
            return None
        if self._changes is None:
            self._ensure_listener()
        elif self._changes.changed():
            cache.flush()
        return cache

    @staticmethod
    def _key(what: str, params: dict[str, Any]) -> str:
        """A cache key of a collection read: never an entity id (it holds NUL)."""
        return "\0".join(("", what, *(repr(params[k]) for k in sorted(params))))

    def _kept(
        self, what: str, params: dict[str, Any], fresh: bool, load: Callable[[], Sequence[Any]]
    ) -> Sequence[Any]:
        """What `load` reads for a collection read (`what` with `params`), kept in the read
        cache (occi.store.cache) like a GET of one entity's and dropped with it at any change.
        The same object is given to every reader until then: callers never change it. `fresh`:
        read the database, keep nothing."""
        cache = self._current_cache(fresh)
        if cache is None:
            return load()
        key = self._key(what, params)
        kept = cache.get(key)
        if kept is not None:
            return kept
        generation = cache.generation
        value = load()
        cache.put(key, value, generation)
        return value

    def _read(self, stmt: _DriverStatement, params: dict[str, Any]) -> Rows:
        """One prebuilt read statement on an autocommit connection: begin(readonly=True,
        single=True) without a transaction's set-up, for the hottest collection reads."""
        try:
            with self._read_engine.connect() as conn:
                rows = stmt.rows(conn, params)
        except OperationalError as exc:
            raise self._unavailable(exc) from exc
        self.health.ok()
        return rows

    def locations(self, q: Query, *, fresh: bool = False) -> list[str]:
        """A page of one kind's locations: as kept in the read cache (see _kept) while nothing
        changed."""
        params = _plain_page(q)
        if params is None:
            return super().locations(q)
        stmt = _PAGE_OF_LOCATIONS[q.project is not None]

        def load() -> list[str]:
            return [loc for (loc,) in self._read(stmt, params) if loc]

        return list(self._kept("locations", params, fresh, load))  # the caller's own copy

    def _drop_connections(self) -> None:
        """Empty the pools: their connections died with the database."""
        self.engine.dispose()
        if self._read_engine is not self.engine:
            self._read_engine.dispose()

    def stored_page(self, q: Query, *, fresh: bool = False) -> list[Stored]:
        """A page of one kind with its links: as kept in the read cache (a list never
        changed, the same object for every reader until a change: see _kept) while nothing
        changed. Read in one statement on PostgreSQL; on SQLite in two, in one snapshot."""
        params = _plain_page(q)
        if params is None:
            if self.dialect == "sqlite":
                return super().stored_page(q)
            with self.begin(readonly=True, single=True) as tx:  # one statement: no BEGIN
                return tx.stored_page(q)
        if self.dialect == "sqlite":

            def load() -> list[Stored]:
                return StoredPage(super(SqlStore, self).stored_page(q))
        else:
            stmt = _PAGE_WITH_LINKS[q.project is not None]

            def load() -> list[Stored]:
                return StoredPage(_iter_stored(self._read(stmt, params)))

        return self._kept("stored page", params, fresh, load)  # type: ignore[return-value]

    def stored_stream(self, q: Query, batch: int = 500) -> Iterator[Stored]:
        """SqlTx.stored_stream in one read transaction: a consistent snapshot."""
        if q.offset or q.limit is not None:
            yield from super().stored_stream(q, batch)
            return
        with self.begin(readonly=True) as tx:
            yield from tx.stored_stream(q, batch)

    def fingerprint(self, rows: Any) -> Any:
        # a Stored's rows are tuples of plain values: their hash stands for them (a keyed
        # 64-bit hash: a different entity with the same hash is not a practical risk), and
        # keeping it instead of the rows makes a kept piece several times smaller
        return hash(rows)

    def entity_of(self, rows: Any) -> Entity:
        return entity_of_stored(rows)

    def get_one(self, entity_id: str, *, fresh: bool = False) -> Entity | None:
        cache = self._current_cache(fresh)
        if cache is None:
            return super().get_one(entity_id)
        rows = cache.get(entity_id)
        if rows is None:
            generation = cache.generation
            with self.begin(readonly=True, single=True) as tx:
                rows = _GET_DRIVER.rows(tx.conn, {"entity_id": entity_id})
            if rows:
                cache.put(entity_id, rows, generation)
        return SqlTx._from_tuples(rows)

    @property
    def entity_cache(self) -> EntityCache | None:
        return self._cache

    # -- change signal for the categories --------------------------------------------------
    # Every request would otherwise read the categories version from SQL. Instead a cheap token
    # changes when the categories do: on SQLite (one host) the mtime of a file beside the
    # database, touched after each commit that bumped the version; on PostgreSQL a counter a
    # LISTEN thread increments on each NOTIFY from any server.

    def categories_signal(self) -> int | None:
        if self.dialect == "sqlite":
            if self._signal_path is None:
                return None
            try:
                return os.stat(self._signal_path).st_mtime_ns
            except FileNotFoundError:
                return 0
        self._ensure_listener()
        return self._notifications if self._listening else None

    def _signal_categories(self) -> None:
        if self.dialect == "sqlite" and self._signal_path is not None:
            tmp = f"{self._signal_path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(str(time.time_ns()))
            os.replace(tmp, self._signal_path)

    def _ensure_listener(self) -> None:
        if self._listener_started:
            return
        with self._listener_lock:
            if self._listener_started:
                return
            self._listener_started = True
            threading.Thread(target=self._listen, name="occi-changes-listen", daemon=True).start()

    def _listen(self) -> None:
        """One connection LISTENing for the categories' and (with a cache) the entities'
        changes. The cache is on only while this connection is up and the schema has the
        trigger that announces changes (migration 0004)."""
        import psycopg

        dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        cache = self._cache
        lost = False  # said so in the log already: say it once per outage
        while not self._closed:
            try:
                with psycopg.connect(
                    dsn, autocommit=True, connect_timeout=10, application_name=LISTENER_NAME
                ) as conn:
                    conn.execute(f"LISTEN {CATEGORIES_CHANNEL}")
                    if cache is not None:
                        conn.execute(f"LISTEN {ENTITIES_CHANNEL}")
                        announced = (
                            conn.execute(
                                "SELECT 1 FROM pg_trigger WHERE tgname = %s", (ENTITIES_TRIGGER,)
                            ).fetchone()
                            is not None
                        )
                        if not announced:
                            log.warning(
                                "the database does not announce entity changes "
                                "(run occi-server migrate): no entity cache"
                            )
                        cache.enable(announced)
                    self._notifications += 1  # anything may have changed while not listening
                    self._listening = True
                    if lost:
                        log.warning("change listener connected again")
                        lost = False
                    while not self._closed:
                        for note in conn.notifies(timeout=5.0):
                            if note.channel == ENTITIES_CHANNEL:
                                cache.flush()  # type: ignore[union-attr]
                            else:
                                self._notifications += 1
            except Exception as exc:
                self._listening = False
                if cache is not None:
                    cache.enable(False)
                self._notifications += 1
                if self._closed:
                    return
                if not lost:
                    log.warning("change listener lost its connection: %s", describe_failure(exc))
                    lost = True
                time.sleep(1)

    def upgrade(self) -> None:
        from alembic import command

        cfg = alembic_config()
        with self.engine.connect() as conn:
            with conn.begin():
                if self.dialect == "postgresql":
                    # Two processes starting at once: the second waits, then finds head.
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(UPGRADE_LOCK_KEY)))
                # On SQLite the BEGIN IMMEDIATE above serialises upgraders the same way.
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(occi_sqlite_begin="BEGIN")
                conn.execute(sa.text("SELECT 1"))
            self.health.ok()
            return True
        except (SQLAlchemyError, OSError) as exc:
            if is_outage(exc):
                self.health.failed(exc)
            else:
                log.warning("database ping failed: %s", describe_failure(exc))
            return False

    def iter_all(self, q: Query, batch: int = 500) -> Iterator[Entity]:
        """Stream every match from one statement in one read transaction: a consistent
        snapshot, and the same number of statements for 10 entities or 100,000."""
        if q.offset or q.limit is not None:
            yield from super().iter_all(q, batch)
            return
        with self.begin(readonly=True) as tx:
            yield from tx.stream(q, batch)

    def close(self) -> None:
        self._closed = True
        if self._changes is not None:
            self._changes.close()
        self.engine.dispose()
        if self._read_engine is not self.engine:
            self._read_engine.dispose()


def alembic_config(url: str | None = None) -> Any:
    """An Alembic Config built in code (no alembic.ini): script_location is the package dir."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# the inventory's and the EC2 front's tables join the metadata (they import it from here)
from occi.store import ec2_sql as _ec2_sql  # noqa: E402,F401
from occi.store import inventory_sql as _inventory_sql  # noqa: E402,F401

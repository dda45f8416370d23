"""Persistence: the store contract (occi.store.base) and `make_store`, which picks the SQL
implementation for a database URL (sqlite:///path.db or postgresql://...)."""

from __future__ import annotations

from typing import Any

from occi.store.base import Query, Store, StoreTx

__all__ = ["Query", "Store", "StoreTx", "make_store"]


def make_store(url: str, **engine_kwargs: Any) -> Store:
    """A store for this database URL; call `upgrade()` on it to create or migrate the schema.

    `postgresql://` URLs use psycopg 3; `entity_cache` (a keyword) sizes the PostgreSQL read
    cache (occi.store.cache), every other keyword goes to SQLAlchemy's create_engine.
    """
    from occi.store.sql import SqlStore

    return SqlStore(url, **engine_kwargs)

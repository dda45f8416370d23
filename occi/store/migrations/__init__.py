"""Alembic migrations of the store's schema (env.py, versions/). A package so that it ships in
the wheel; SqlStore.upgrade() finds it through importlib.resources."""

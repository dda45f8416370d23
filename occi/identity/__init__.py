"""Identity: projects, users, role assignments, API tokens and quotas (model, secrets, SQL).

No falcon here; the store's tables live in occi.store.sql, the administration in occi.cli.
"""

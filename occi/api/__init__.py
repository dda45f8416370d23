"""The HTTP API (falcon): see occi.api.app; occi.api.wsgi builds it from settings."""

from occi.api.app import create_app

__all__ = ["create_app"]

"""OCCI 1.2 server: model, service, store and HTTP API (see DESIGN.md for the map of rooms)."""

__version__ = "0.1.0"

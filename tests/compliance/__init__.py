"""Compliance: the independent OCCI test tool pOCCI run against a live server."""

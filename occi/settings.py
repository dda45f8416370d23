"""One settings object: defaults, then an optional file, then OCCI_* environment variables.

The file (OCCI_CONFIG, or --config on the command line) is INI with one [occi] section whose
keys are the setting names below, lower-case (database_url = ...). Every OCCI_* variable is also
handed to the backend, so backend options (OCCI_SIMULATOR_DELAY, OCCI_LIBVIRT_URI, ...) need no
code here.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from occi.jobs.runner import JobSettings

PREFIX = "OCCI_"


@dataclass
class Settings:
    bind: str = "127.0.0.1:8080"
    workers: int = 2
    #: threads per worker process (gunicorn gthread): a slow request does not hold up others
    threads: int = 4
    database_url: str = "sqlite:///occi.db"
    backend: str = "simulator"
    #: public root URL when behind a proxy (e.g. https://cloud.example.com); else from the request
    base_url: str = ""
    #: largest request body accepted, in bytes
    max_body: int = 1 << 20
    #: largest `number` accepted for pagination (413 above)
    max_page_size: int = 1000
    log_level: str = "INFO"
    #: seconds a request waits for its hypervisor jobs before answering with the state so far
    job_wait: float = 10.0
    #: lease on a running job, renewed by heartbeats; a job of a dead server is free after it
    job_lease: float = 15.0
    #: seconds between heartbeats of a server process
    heartbeat: float = 1.0
    #: a server silent this long is declared dead and its jobs go to the others
    dead_after: float = 6.0
    #: job worker threads per server process
    job_threads: int = 2
    #: attempts before a failing job gives up (the entity goes to state error)
    job_max_attempts: int = 5
    #: seconds between full passes comparing stored states with the platform (0: never)
    reconcile_interval: float = 10.0
    #: one-entity reads each server process keeps in memory on PostgreSQL, kept correct by
    #: LISTEN/NOTIFY (0: none; see occi/store/cache.py)
    entity_cache: int = 10_000
    #: header fields in one request (400 above)
    max_headers: int = 200
    #: bytes of all header names and values in one request (400 above)
    max_header_bytes: int = 65536
    #: categories in one request: mixins defined or removed, filters, an entity's kind and
    #: mixins (400 above)
    max_categories: int = 100
    #: attributes in one entity, action invocation or mixin definition (400 above)
    max_attributes: int = 200
    #: parameters in one Category or Link value of text/plain and text/occi (400 above)
    max_text_parameters: int = 64
    #: everything else from the file and OCCI_* (lower-case, without prefix), for the backend
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        config_file: str | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        raw: dict[str, str] = {}
        path = config_file or env.get(PREFIX + "CONFIG")
        if path:
            parser = configparser.ConfigParser()
            if not parser.read(path, encoding="utf-8"):
                raise SettingsError(f"configuration file {path} cannot be read")
            if parser.has_section("occi"):
                raw.update({k.lower(): v for k, v in parser.items("occi")})
        for key, value in env.items():
            if key.startswith(PREFIX) and key != PREFIX + "CONFIG":
                raw[key[len(PREFIX) :].lower()] = value
        return cls.from_mapping(raw)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Settings:
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for key, value in raw.items():
            f = known.get(key)
            if f is None:
                extra[key] = value
                continue
            if f.type in ("int", int):
                try:
                    kwargs[key] = int(value)
                except (TypeError, ValueError):
                    raise SettingsError(
                        f"setting {key} must be an integer, not {value!r}"
                    ) from None
            elif f.type in ("float", float):
                try:
                    kwargs[key] = float(value)
                except (TypeError, ValueError):
                    raise SettingsError(f"setting {key} must be a number, not {value!r}") from None
                if not kwargs[key] >= 0:
                    raise SettingsError(f"setting {key} must not be negative")
            else:
                kwargs[key] = str(value)
        s = cls(**kwargs, extra=extra)
        if s.workers < 1:
            raise SettingsError("setting workers must be at least 1")
        if s.max_page_size < 1:
            raise SettingsError("setting max_page_size must be at least 1")
        for name in (
            "max_headers",
            "max_header_bytes",
            "max_categories",
            "max_attributes",
            "max_text_parameters",
        ):
            if getattr(s, name) < 1:
                raise SettingsError(f"setting {name} must be at least 1")
        return s

    def job_settings(self) -> JobSettings:
        from occi.jobs.runner import JobSettings

        return JobSettings(
            wait=self.job_wait,
            lease=self.job_lease,
            heartbeat=self.heartbeat,
            dead_after=self.dead_after,
            threads=self.job_threads,
            max_attempts=self.job_max_attempts,
            reconcile=self.reconcile_interval,
        )

    def backend_settings(self) -> dict[str, Any]:
        """What the backend sees: its own options plus the database URL."""
        return {**self.extra, "database_url": self.database_url}

    def to_env(self) -> dict[str, str]:
        """These settings as OCCI_* variables (to hand them to gunicorn workers)."""
        out = {PREFIX + k.upper(): str(v) for k, v in self.extra.items()}
        for f in fields(self):
            if f.name != "extra":
                out[PREFIX + f.name.upper()] = str(getattr(self, f.name))
        return out


class SettingsError(ValueError):
    """A setting has a value the server cannot use."""

"""One settings object: defaults, then an optional file, then OCCI_* environment variables, then
the command line's options (`Settings.load(overrides=...)`), each level over the one before.

The file (OCCI_CONFIG, or --config on the command line) is INI with one [occi] section whose
keys are the setting names below, lower-case (database_url = ...), or backend options, which
start with an installed backend's name (simulator_delay, libvirt_uri); any other key, a missing
[occi] section or a malformed line is a SettingsError naming the file and line. Every OCCI_*
variable is also handed to the backend, so backend options (OCCI_SIMULATOR_DELAY,
OCCI_LIBVIRT_URI, ...) need no code here; unknown variables are kept (`unrecognised()` lists
them for a warning).
"""

from __future__ import annotations

import configparser
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from occi.jobs.runner import JobSettings

PREFIX = "OCCI_"
#: the authentication methods the `auth` setting may list
AUTH_METHODS = ("basic", "token", "oidc", "x509", "none")
#: the `placement_strategy` setting's values (occi.inventory.placement.STRATEGIES)
PLACEMENT_STRATEGIES = ("firstfit", "leastused", "random", "dispersed")


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
    #: directory for the gunicorn workers' metric files (emptied at start; empty: a fresh
    #: private temporary directory, removed at exit)
    metrics_dir: str = ""
    #: seconds a client has to send a request's headers, and again its body (0: no bound);
    #: a slow client past it is cut off, so it cannot hold a worker thread
    read_timeout: float = 10.0
    #: bytes of a body above max_body read and thrown away, so the client can read its 413
    #: (a larger body gets the 413 and a closed connection)
    max_discard: int = 64 << 20
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
    #: default quotas of a project without its own (`occi-server quotas set`); -1: unlimited.
    #: Enforced on creates and resizes (occi.service.quotas): virtual machines, their cores in all,
    #: their memory in GB in all, volumes, their size in GB in all, networks
    quota_instances: int = -1
    quota_cores: int = -1
    quota_memory_gb: int = -1
    quota_volumes: int = -1
    quota_storage_gb: int = -1
    quota_networks: int = -1
    #: how clients prove who they are, in the order tried: basic, token, oidc, x509, none
    #: (none: no authentication, every request is a member of `auth_project`; development only)
    auth: str = "basic,token"
    #: the project every request works in when `auth` is none
    auth_project: str = "default"
    #: seconds a verified password or token is trusted in a server process without asking the
    #: database again: a revoked token, a changed password or role takes this long to bite
    auth_cache_seconds: float = 30.0
    #: failed authentications from one client address, or for one user name, within
    #: `auth_fail_window` seconds before further attempts get 429 until the window passes
    auth_fail_limit: int = 20
    auth_fail_window: float = 60.0
    #: OIDC: issuers trusted (space- or comma-separated URLs; their JWKS from discovery)
    oidc_issuers: str = ""
    #: OIDC: the audience a token must name (empty: the `aud` claim is not checked)
    oidc_audience: str = ""
    #: OIDC: seconds of clock skew allowed on exp, nbf and iat
    oidc_leeway: float = 60.0
    #: OIDC: the claims holding entitlements or groups, tried in order
    oidc_groups_claim: str = "eduperson_entitlement,entitlements,groups"
    #: OIDC: how an entitlement names a project and a role ({project} and {role} placeholders)
    oidc_entitlement: str = "urn:mace:egi.eu:group:{project}:role={role}#aai.egi.eu"
    #: OIDC: entitlement roles granting each project role (role=names, ...; others: nothing)
    oidc_roles: str = "member=member vm_operator manager owner,reader=reader"
    #: the web console's OpenID Connect login (authorization code flow, with `oidc` in `auth`):
    #: this server's client id and secret at the first issuer of oidc_issuers (empty: passwords
    #: only), and the scopes it asks for
    console_oidc_client_id: str = ""
    console_oidc_client_secret: str = field(default="", repr=False)
    console_oidc_scopes: str = "openid profile email eduperson_entitlement"
    #: X.509: addresses (IPs or CIDR networks, comma-separated) of the TLS-terminating proxies
    #: whose X-SSL-Client-* headers are believed
    x509_proxies: str = "127.0.0.1,::1"
    #: browser origins (scheme://host[:port], comma-separated) allowed to call the API across
    #: sites; `*` allows any (credentials are then never allowed); empty: same origin only
    cors_origins: str = ""
    #: days audit events are kept (0: for ever)
    audit_days: int = 90
    #: the file the first start writes the admin and demo passwords to (empty: beside the
    #: SQLite database, else in the working directory); readable by its owner only
    credentials_file: str = ""
    #: CPU and memory overcommit of the one-cluster shorthand's cluster (occi.inventory.
    #: shorthand; clusters made by an administrator have their own): above 0, at most 64
    shorthand_cpu_overcommit: float = 16.0
    shorthand_memory_overcommit: float = 4.0
    #: the key encrypting clusters' connection settings at rest (occi.inventory.secrets): any
    #: text of 16 characters or more, the same on every server sharing a database; empty: a key
    #: file made on first start (secret_key_file)
    secret_key: str = field(default="", repr=False)
    #: the key file used when secret_key is empty (empty: occi-secret-key beside the SQLite
    #: database, else in the working directory); readable by its owner only
    secret_key_file: str = ""
    #: how a compute's host is chosen: firstfit (hosts by name), leastused (most free memory
    #: first), random, dispersed (fewest VMs of the same project first)
    placement_strategy: str = "firstfit"
    #: the zone of a create that names no zone mixin (empty: the first zone by name)
    default_zone: str = ""
    #: seconds between checks of every host by one of the servers (occi.inventory.monitor;
    #: 0: hosts are never checked, and never marked down)
    host_check_interval: float = 10.0
    #: seconds a host may go without answering before it is `down` and its VMs in `error`
    host_down_after: float = 30.0
    #: the region the EC2 Query API (/ec2/) is: what clients name in their SigV4 scope and
    #: DescribeRegions answers
    ec2_region: str = "RegionOne"
    #: everything else from the file and OCCI_* (lower-case, without prefix), for the backend
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        config_file: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Defaults < the file (`config_file`, else $OCCI_CONFIG) < OCCI_* variables <
        `overrides` (the command line's options; None values are left out)."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        path = config_file or env.get(PREFIX + "CONFIG")
        if path:
            raw.update(read_file(path))
        for key, value in env.items():
            if key.startswith(PREFIX) and key != PREFIX + "CONFIG":
                raw[key[len(PREFIX) :].lower()] = value
        raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
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
        if s.placement_strategy not in PLACEMENT_STRATEGIES:
            raise SettingsError(
                f"setting placement_strategy must be one of {', '.join(PLACEMENT_STRATEGIES)}, "
                f"not {s.placement_strategy!r}"
            )
        unknown = [m for m in s.auth_methods() if m not in AUTH_METHODS]
        if unknown or not s.auth_methods():
            raise SettingsError(
                f"setting auth must list one or more of {', '.join(AUTH_METHODS)}, not {s.auth!r}"
            )
        if "none" in s.auth_methods() and len(s.auth_methods()) > 1:
            raise SettingsError("setting auth: none cannot be combined with other methods")
        for name in ("shorthand_cpu_overcommit", "shorthand_memory_overcommit"):
            if not 0 < getattr(s, name) <= 64:
                raise SettingsError(f"setting {name} must be above 0 and at most 64")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", s.ec2_region):
            raise SettingsError(
                "setting ec2_region must be a region name (letters, digits, '-', '_'; e.g. "
                f"RegionOne), not {s.ec2_region[:80]!r}"
            )
        for f in fields(cls):
            if f.name.startswith("quota_") and getattr(s, f.name) < -1:
                raise SettingsError(f"setting {f.name} must be -1 (unlimited) or more")
        return s

    def auth_methods(self) -> list[str]:
        """The `auth` setting as a list, in order (comma- or space-separated, lower-case)."""
        return [m for m in re.split(r"[\s,]+", self.auth.strip().lower()) if m]

    def default_quotas(self) -> dict[str, int]:
        """The quota_* settings by resource (instances, cores, ...): a project's limits where it
        has none of its own."""
        return {
            f.name.removeprefix("quota_"): getattr(self, f.name)
            for f in fields(self)
            if f.name.startswith("quota_")
        }

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

    def unrecognised(self) -> list[str]:
        """Extra keys (from OCCI_* variables) that are neither settings nor backend options,
        nor the `occi` client command's (CLIENT_VARIABLES: a shell may hold both)."""
        prefixes = backend_prefixes()
        return sorted(
            k for k in self.extra if not k.startswith(prefixes) and k not in CLIENT_VARIABLES
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


#: the `occi` client command's variables (occi/client/config.py ENV), lower case, without OCCI_
CLIENT_VARIABLES = frozenset(
    {
        "url",
        "auth_method",
        "user",
        "password",
        "token",
        "oidc_token",
        "client_cert",
        "client_key",
        "ca_bundle",
        "insecure",
        "project",
        "media",
        "http_timeout",
        "profile",
        "client_config",
        "credentials",
    }
)


class SettingsError(ValueError):
    """A setting has a value the server cannot use."""


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings) if f.name != "extra"]


def backend_prefixes() -> tuple[str, ...]:
    """How backend options start: an installed backend's name and an underscore."""
    from occi.plugins import available

    return tuple(f"{name}_" for name in available())


def suggest(word: str, choices: list[str]) -> str:
    """A " (did you mean x?)" hint naming the closest of `choices`, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def read_file(path: str) -> dict[str, str]:
    """The [occi] section of an INI file; any problem is one SettingsError naming the line."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"configuration file {path} cannot be read: {exc}") from None
    # No interpolation: a % in a database password is just a character.
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=path)
    except configparser.MissingSectionHeaderError as exc:
        raise SettingsError(
            f"{path}, line {exc.lineno}: a setting before the [occi] section header"
        ) from None
    except configparser.ParsingError as exc:
        lineno = exc.errors[0][0]
        line = text.splitlines()[lineno - 1].strip()
        raise SettingsError(
            f"{path}, line {lineno}: {line!r} is neither `key = value` nor a [section]"
        ) from None
    except configparser.DuplicateOptionError as exc:
        raise SettingsError(
            f"{path}, line {exc.lineno}: {exc.option} is given twice in [{exc.section}]"
        ) from None
    except configparser.DuplicateSectionError as exc:
        raise SettingsError(
            f"{path}, line {exc.lineno}: section [{exc.section}] is given twice"
        ) from None
    except configparser.Error as exc:
        raise SettingsError(f"{path}: {exc.message.splitlines()[0]}") from None
    if not parser.has_section("occi"):
        found = ", ".join(f"[{s}]" for s in parser.sections()) or "none"
        raise SettingsError(f"{path}: no [occi] section (sections found: {found})")
    names = setting_names()
    prefixes = backend_prefixes()
    out: dict[str, str] = {}
    for key, value in parser.items("occi"):
        if key not in names and not key.startswith(prefixes):
            raise SettingsError(
                f"{path}{_line_of(text, key)}: unknown setting {key!r}{suggest(key, names)}; "
                f"backend options start with a backend name ({', '.join(prefixes)})"
            )
        out[key] = value
    return out


def _line_of(text: str, key: str) -> str:
    """ ", line N" for `key` in the [occi] section of an INI text (configparser keeps no lines)."""
    pattern = re.compile(rf"\s*{re.escape(key)}\s*[=:]", re.IGNORECASE)
    section = None
    for n, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\[([^\]]+)\]", line)
        if header:
            section = header.group(1)
        elif section == "occi" and pattern.match(line):
            return f", line {n}"
    return ""

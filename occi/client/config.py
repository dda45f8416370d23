"""Where the `occi` command finds its server and credentials: profiles in a TOML file in the
user's config directory, then OCCI_* environment variables, then command-line options (later
ones win). Pure data: no HTTP here."""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: a profile's keys, in the order `occi profile show` prints them
KEYS = (
    "url",
    "auth",
    "user",
    "password",
    "token",
    "oidc_token",
    "cert",
    "key",
    "ca",
    "insecure",
    "project",
    "media",
    "http_timeout",
    "credentials",
)
#: the environment variables of each key (OCCI_PROFILE picks the profile)
ENV = {
    "url": "OCCI_URL",
    "auth": "OCCI_AUTH_METHOD",
    "user": "OCCI_USER",
    "password": "OCCI_PASSWORD",
    "token": "OCCI_TOKEN",
    "oidc_token": "OCCI_OIDC_TOKEN",
    "cert": "OCCI_CLIENT_CERT",
    "key": "OCCI_CLIENT_KEY",
    "ca": "OCCI_CA_BUNDLE",
    "insecure": "OCCI_INSECURE",
    "project": "OCCI_PROJECT",
    "media": "OCCI_MEDIA",
    "http_timeout": "OCCI_HTTP_TIMEOUT",
    "credentials": "OCCI_CREDENTIALS",
}
#: the file `occi-server`'s first start writes (read from the working directory when no
#: credentials are given at all, as the walkthroughs in examples/ do)
LOCAL_CREDENTIALS = "occi-credentials"
PROFILE_ENV = "OCCI_PROFILE"
CONFIG_ENV = "OCCI_CLIENT_CONFIG"
AUTH_METHODS = ("basic", "token", "oidc", "x509", "none")
MEDIA = {"json": "application/occi+json", "text": "text/plain"}
SECRET_KEYS = ("password", "token", "oidc_token")


class ConfigError(ValueError):
    """The configuration file or a value in it cannot be used (a usage error: exit 2)."""


@dataclass
class Profile:
    """The settings of one invocation, each with where it came from (`sources`)."""

    name: str = "default"
    url: str = "http://127.0.0.1:8080"
    auth: str = ""
    user: str | None = None
    password: str | None = None
    token: str | None = None
    oidc_token: str | None = None
    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    insecure: bool = False
    project: str | None = None
    media: str = MEDIA["json"]
    http_timeout: float = 60.0
    credentials: str | None = None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def method(self) -> str:
        """The authentication method: the one named, else the first whose secrets are given."""
        if self.auth:
            return self.auth
        if self.token:
            return "token"
        if self.oidc_token:
            return "oidc"
        if self.user is not None:
            return "basic"
        if self.cert:
            return "x509"
        return "none"

    def shown(self) -> list[dict[str, str]]:
        """Each key with its value (secrets masked) and its source, for `occi profile show`."""
        rows = []
        for key in KEYS:
            value = getattr(self, key)
            if key == "auth":
                value = self.method
            text = "" if value is None else str(value)
            if key in SECRET_KEYS and text:
                text = "********"
            rows.append({"key": key, "value": text, "source": self.sources.get(key, "default")})
        return rows


def config_path() -> Path:
    """OCCI_CLIENT_CONFIG, else config.toml in the user's config directory: $XDG_CONFIG_HOME/occi
    (~/.config/occi) on Linux and BSD, ~/Library/Application Support/occi on macOS,
    %APPDATA%\\occi on Windows."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".config"
    return base / "occi" / "config.toml"


def read_file(path: Path) -> dict[str, Any]:
    """The file's document ({} when it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    profiles = doc.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        raise ConfigError(f"{path}: [profiles.NAME] tables hold the profiles")
    for name, values in profiles.items():
        for key in values:
            if key not in KEYS:
                raise ConfigError(
                    f"{path} [profiles.{name}]: unknown key {key!r} (known: {', '.join(KEYS)})"
                )
    return doc


def _set(profile: Profile, key: str, value: Any, source: str) -> None:
    if key not in KEYS:
        raise ConfigError(f"{source}: unknown key {key!r} (known: {', '.join(KEYS)})")
    if key == "insecure":
        if isinstance(value, str):
            value = value.strip().lower() in ("1", "true", "yes", "on")
        value = bool(value)
    elif key == "http_timeout":
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: http_timeout must be a number of seconds") from None
        if not 0 < value <= 3600:
            raise ConfigError(f"{source}: http_timeout must be above 0 and at most 3600")
    elif key == "auth":
        value = str(value).strip().lower()
        if value not in AUTH_METHODS:
            raise ConfigError(f"{source}: auth must be one of {', '.join(AUTH_METHODS)}")
    elif key == "media":
        value = MEDIA.get(str(value), str(value))
        if value not in MEDIA.values():
            raise ConfigError(f"{source}: media must be one of {', '.join(MEDIA.values())}")
    elif value is not None:
        value = str(value)
        if key in ("cert", "key", "ca", "credentials"):
            value = os.path.expanduser(value)
    setattr(profile, key, value)
    profile.sources[key] = source


def load(options: dict[str, Any] | None = None, path: Path | None = None) -> Profile:
    """The profile of this invocation: defaults < the file's profile < OCCI_* variables <
    `options` (the command line's, None where not given). The profile is `options["profile"]`,
    else OCCI_PROFILE, else the file's `profile` key, else `default`; a profile named on the
    command line or in OCCI_PROFILE must exist in the file."""
    options = dict(options or {})
    path = path or config_path()
    doc = read_file(path)
    profiles: dict[str, dict[str, Any]] = doc.get("profiles", {})
    name = options.pop("profile", None) or os.environ.get(PROFILE_ENV)
    named = bool(name)
    name = name or str(doc.get("profile", "default"))
    if name not in profiles and (named or "profile" in doc):
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"no profile {name!r} in {path} (profiles: {known})")
    profile = Profile(name=name)
    for key, value in profiles.get(name, {}).items():
        _set(profile, key, value, f"{path} [profiles.{name}]")
    for key, var in ENV.items():
        if os.environ.get(var):
            _set(profile, key, os.environ[var], var)
    for key, value in options.items():
        if value is not None:
            _set(profile, key, value, "--" + key.replace("_", "-"))
    _first_start_credentials(profile)
    profile.url = profile.url.rstrip("/")
    if not profile.url.startswith(("http://", "https://")):
        raise ConfigError(f"the server URL {profile.url!r} must start with http:// or https://")
    return profile


def _first_start_credentials(profile: Profile) -> None:
    """A user and password from a server's first-start credentials file (`credentials`, else
    ./occi-credentials when nothing else is given): the password of the user named (`admin` or
    `demo`; `demo` when none is), where no password or other secret is set."""
    if profile.password is not None or profile.auth not in ("", "basic"):
        return
    if profile.token or profile.oidc_token or profile.cert:
        return
    path = profile.credentials
    source = profile.sources.get("credentials", "")
    implicit = path is None
    if path is None:
        if not os.path.isfile(LOCAL_CREDENTIALS):
            return
        path, source = LOCAL_CREDENTIALS, f"./{LOCAL_CREDENTIALS}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the credentials file {path}: {exc.strerror}") from None
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    user = profile.user or values.get("OCCI_DEMO_USER") or "demo"
    for who in ("OCCI_DEMO", "OCCI_ADMIN"):
        if values.get(f"{who}_USER") == user and values.get(f"{who}_PASSWORD"):
            if profile.user is None:
                _set(profile, "user", user, source)
            _set(profile, "password", values[f"{who}_PASSWORD"], source)
            return
    if not implicit:
        raise ConfigError(f"{path} holds no password of the user {user!r}")


def profile_names(path: Path | None = None) -> list[str]:
    return sorted(read_file(path or config_path()).get("profiles", {}))

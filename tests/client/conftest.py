"""One real `occi-server` (gunicorn, simulator, authentication on) for every test of the `occi`
client command, and a way to run the command in-process (click's CliRunner) against it.

It trusts a real OpenID Connect issuer. The server answers writes at once (job_wait 0), so the client's --wait does the waiting. Its
inventory has, beside the zone `default` of three simulated hosts, a zone `slow` whose cluster's
simulator takes a while for each operation and a zone `broken` whose simulator fails creates.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result

from occi.client import config
from occi.client.cli import cli
from tests.live import LiveServer
from tests.oidc_issuer import OidcIssuer

#: seconds each operation takes in the zone `slow`
SLOW_DELAY = 0.6


@dataclass
class ClientServer:
    url: str
    port: int
    admin: tuple[str, str]
    demo: tuple[str, str]
    database_url: str
    #: the first start's credentials file (passwords of admin and demo)
    credentials: Path
    #: the OpenID Connect issuer the server trusts (audience "occi")
    issuer: OidcIssuer
    #: a path where no configuration file is (the tests' default OCCI_CLIENT_CONFIG)
    no_config: Path

    def env(self, user: str = "demo", **extra: str | None) -> dict[str, str | None]:
        """The environment of one invocation: every client variable cleared, then the server's
        URL and the user's credentials, then `extra`."""
        env: dict[str, str | None] = {var: None for var in config.ENV.values()}
        env[config.PROFILE_ENV] = None
        name, password = self.admin if user == "admin" else self.demo
        env.update(
            {
                "OCCI_URL": self.url,
                "OCCI_USER": name,
                "OCCI_PASSWORD": password,
                config.CONFIG_ENV: str(self.no_config),
                "COLUMNS": "200",
            }
        )
        env.update(extra)
        return env

    def run(
        self, *args: str, user: str = "demo", stdin: str | None = None, **env: str | None
    ) -> Result:
        """`occi ARGS` in-process (`stdin` its standard input); stdout and stderr apart."""
        return CliRunner().invoke(
            cli, list(args), input=stdin, env=self.env(user, **env), catch_exceptions=False
        )


def ok(result: Result) -> str:
    """The standard output of a run that exited 0."""
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.stdout


def js(result: Result) -> Any:
    """The JSON a run that exited 0 printed."""
    return json.loads(ok(result))


def _credentials(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


@pytest.fixture(scope="session")
def occi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientServer]:
    tmp = tmp_path_factory.mktemp("client-server")
    issuer = OidcIssuer()
    server = LiveServer(
        tmp,
        workers=1,
        auth="basic,token,oidc,x509",
        oidc_issuers=issuer.url,
        oidc_audience="occi",
        job_wait=0,
        default_zone="default",
        job_max_attempts=1,
    )
    try:
        creds = _credentials(tmp / "occi-credentials")
        admin = (creds["OCCI_ADMIN_USER"], creds["OCCI_ADMIN_PASSWORD"])
        http = requests.Session()
        http.auth = admin
        for doc in (
            ("zones", {"name": "slow"}),
            ("zones", {"name": "broken"}),
            (
                "clusters",
                {
                    "name": "slowc",
                    "zone": "slow",
                    "backend": "simulator",
                    "settings": {"simulator_delay": str(SLOW_DELAY)},
                },
            ),
            (
                "clusters",
                {
                    "name": "brokenc",
                    "zone": "broken",
                    "backend": "simulator",
                    "settings": {"simulator_fail": "create"},
                },
            ),
            ("hosts", {"name": "slow1", "cluster": "slowc", "cores": 64, "memory_gb": 256}),
            ("hosts", {"name": "broken1", "cluster": "brokenc", "cores": 64, "memory_gb": 256}),
        ):
            r = http.post(f"{server.url}/-/admin/{doc[0]}", json=doc[1], timeout=30)
            assert r.status_code == 201, r.text
        yield ClientServer(
            url=server.url,
            port=server.port,
            admin=admin,
            demo=(creds["OCCI_DEMO_USER"], creds["OCCI_DEMO_PASSWORD"]),
            database_url=f"sqlite:///{tmp}/occi.db",
            issuer=issuer,
            credentials=tmp / "occi-credentials",
            no_config=tmp / "no-such-config.toml",
        )
    finally:
        server.stop()
        issuer.stop()


@pytest.fixture
def occi(
    occi_server: ClientServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ClientServer:
    """The server, with the test in an empty working directory (no ./occi-credentials)."""
    monkeypatch.chdir(tmp_path)
    return occi_server


def environ_without_client_variables() -> dict[str, str]:
    """os.environ without any variable the client reads (for subprocess runs)."""
    skip = set(config.ENV.values()) | {config.PROFILE_ENV, config.CONFIG_ENV}
    return {k: v for k, v in os.environ.items() if k not in skip}

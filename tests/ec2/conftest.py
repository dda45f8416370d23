"""One real server (gunicorn, SQLite, the simulator, basic and token authentication) for every
EC2 test, with access keys made by `occi-server credentials create` as an administrator would:
a member of the project `ec2`, a reader of it, a member of another project, and a member of
a project whose quotas allow one instance and no volume."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from occi.ec2 import credentials
from occi.identity.store import IdentityTx
from occi.inventory.secrets import Cipher
from occi.store.sql import SqlStore
from tests.ec2.model_check import check_answer
from tests.live import ROOT, LiveServer
from tests.test_cli import env_for

REGION = "RegionOne"
SECRET_KEY = "ec2-tests-server-key-0123456789"


@dataclass(frozen=True)
class Key:
    access_key: str
    secret: str


@dataclass
class Ec2Server:
    live: LiveServer
    tmp: Path
    url: str
    keys: dict[str, Key]

    @property
    def endpoint(self) -> str:
        return self.live.url + "/ec2/"


def server_cli(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`occi-server ARGS` as an administrator runs it beside the server (same database, same
    secret key)."""
    return subprocess.run(
        [sys.executable, "-m", "occi.cli", *args],
        cwd=tmp,
        env=env_for(tmp, OCCI_DATABASE_URL=url, OCCI_SECRET_KEY=SECRET_KEY),
        capture_output=True,
        text=True,
        timeout=120,
    )


def keys_printed(p: subprocess.CompletedProcess[str]) -> Key:
    assert p.returncode == 0, p.stderr
    found = dict(re.findall(r"^(AWS_\w+)=(\S+)$", p.stdout, re.M))
    return Key(found["AWS_ACCESS_KEY_ID"], found["AWS_SECRET_ACCESS_KEY"])


def make_key(tmp: Path, url: str, user: str, project: str) -> Key:
    """`occi-server credentials create USER --project P`, as an administrator runs it."""
    return keys_printed(server_cli(tmp, url, "credentials", "create", user, "--project", project))


@pytest.fixture(scope="session")
def ec2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ec2Server]:
    tmp = tmp_path_factory.mktemp("ec2")
    url = f"sqlite:///{tmp}/occi.db"
    live = LiveServer(
        tmp,
        auth="basic,token",
        secret_key=SECRET_KEY,
        simulator_delay=0,
        # two small hosts and no memory overcommit: an xlarge (32 GB) fits on none of them
        simulator_hosts="sim1:16:24,sim2:16:24",
        shorthand_memory_overcommit=1,
        env={"PYTHONPATH": str(ROOT)},
    )
    try:
        store = SqlStore(url)
        with store.begin() as tx:
            ident = IdentityTx(tx)
            for project in ("ec2", "other", "tight"):
                ident.create_project(project)
            for user, project, role in (
                ("alice", "ec2", "member"),
                ("bob", "ec2", "reader"),
                ("carol", "other", "member"),
                ("dave", "tight", "member"),
            ):
                ident.create_user(user)
                ident.grant(user, project, role)
            ident.set_quota("tight", "instances", 1)
            ident.set_quota("tight", "volumes", 0)
            # the others' keys made as the command makes them, without a process each
            cipher = Cipher(SECRET_KEY, "the tests")
            keys = {
                who: Key(made.access_key, secret)
                for who, user, project in (
                    ("reader", "bob", "ec2"),
                    ("other", "carol", "other"),
                    ("tight", "dave", "tight"),
                )
                for made, secret in [credentials.create(ident, cipher, user, project)]
            }
        store.close()
        keys["member"] = make_key(tmp, url, "alice", "ec2")
        yield Ec2Server(live, tmp, url, keys)
    finally:
        live.stop()


def _checker(**kw: Any) -> None:
    """botocore's before-parse hook: every answer against the model (tests/ec2/model_check)."""
    op = kw["operation_model"]
    response = kw["response_dict"]
    check_answer(op.name, response["status_code"], response["body"])


ClientFactory = Callable[..., Any]


@pytest.fixture(scope="session")
def ec2_client(ec2_server: Ec2Server) -> ClientFactory:
    """A boto3 EC2 client of the server for one of the keys (member by default); every answer
    it reads is checked against botocore's model."""

    def make(who: str = "member", secret: str | None = None, **config: Any) -> Any:
        key = ec2_server.keys[who]
        client = boto3.client(
            "ec2",
            endpoint_url=ec2_server.endpoint,
            region_name=REGION,
            aws_access_key_id=key.access_key,
            aws_secret_access_key=secret or key.secret,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
        )
        client.meta.events.register("before-parse.ec2.*", _checker)
        return client

    return make


@pytest.fixture(scope="session")
def ec2(ec2_client: ClientFactory) -> Any:
    return ec2_client()


def signed(
    server: Ec2Server,
    params: dict[str, str],
    *,
    who: str = "member",
    method: str = "POST",
    presign: bool = False,
) -> requests.Response:
    """A request signed by botocore's own SigV4 signer but sent as given (parameters the
    SDKs would refuse before sending, GET query strings, presigned URLs)."""
    key = server.keys[who]
    creds = Credentials(key.access_key, key.secret)
    if method == "GET" or presign:
        url = server.endpoint + "?" + urlencode(params, quote_via=quote)
        req = AWSRequest(method="GET", url=url)
        signer = SigV4QueryAuth(creds, "ec2", REGION, expires=60) if presign else None
        (signer or SigV4Auth(creds, "ec2", REGION)).add_auth(req)
        prepared = req.prepare()
        return requests.get(prepared.url, headers=dict(prepared.headers), timeout=30)
    body = urlencode(params, quote_via=quote)
    req = AWSRequest(
        method="POST",
        url=server.endpoint,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(creds, "ec2", REGION).add_auth(req)
    prepared = req.prepare()
    return requests.post(server.endpoint, data=body, headers=dict(prepared.headers), timeout=30)

"""`occi-server credentials create|list|delete` as an administrator runs them: the key id and
secret printed once, the secret stored encrypted (never in clear, never listed), a deleted key
refused at once by the live server."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError

from occi.ec2 import credentials
from occi.identity.store import IdentityTx
from occi.settings import Settings, SettingsError
from occi.store.sql import SqlStore
from tests.ec2.conftest import REGION, Ec2Server, keys_printed, make_key, server_cli
from tests.test_cli_identity import ok


def cli(server: Ec2Server, *args: str) -> Any:
    return server_cli(server.tmp, server.url, *args)


def test_create_list_delete(ec2_server: Ec2Server) -> None:
    key = make_key(ec2_server.tmp, ec2_server.url, "alice", "ec2")
    assert re.fullmatch(r"OCCI[A-Z2-7]{16}", key.access_key)
    assert re.fullmatch(r"[A-Za-z0-9]{40}", key.secret)
    store = SqlStore(ec2_server.url)
    try:
        with store.engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT secret FROM ec2_credentials WHERE access_key = :k"),
                {"k": key.access_key},
            ).scalar_one()
    finally:
        store.close()
    assert key.secret not in stored  # encrypted, not kept in clear
    listed = ok(cli(ec2_server, "credentials", "list", "alice"))
    assert key.access_key in listed and key.secret not in listed
    client = boto3.client(
        "ec2",
        endpoint_url=ec2_server.endpoint,
        region_name=REGION,
        aws_access_key_id=key.access_key,
        aws_secret_access_key=key.secret,
    )
    assert client.describe_regions()["Regions"]
    ok(cli(ec2_server, "credentials", "delete", key.access_key))
    with pytest.raises(ClientError) as err:
        client.describe_regions()
    assert err.value.response["Error"]["Code"] == "AuthFailure"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("credentials", "create", "nobody", "--project", "ec2"), 1, "no user named nobody"),
        (("credentials", "delete", "OCCINOSUCHKEY0000000"), 1, "no EC2 access key"),
    ],
)
def test_refusals(ec2_server: Ec2Server, args: tuple[str, ...], code: int, message: str) -> None:
    p = cli(ec2_server, *args)
    assert p.returncode == code, p.stdout + p.stderr
    assert message in p.stderr


def test_a_key_without_a_role_is_made_with_a_warning(
    ec2_server: Ec2Server, ec2_client: Any
) -> None:
    p = cli(ec2_server, "credentials", "create", "carol", "--project", "ec2")
    assert p.returncode == 0
    assert "carol holds no role in project ec2" in p.stderr
    key = keys_printed(p)
    client = boto3.client(
        "ec2",
        endpoint_url=ec2_server.endpoint,
        region_name=REGION,
        aws_access_key_id=key.access_key,
        aws_secret_access_key=key.secret,
    )
    with pytest.raises(ClientError) as err:
        client.describe_instances()
    assert err.value.response["Error"]["Code"] == "UnauthorizedOperation"
    store = SqlStore(ec2_server.url)
    try:
        with store.begin() as tx:
            credentials.delete(IdentityTx(tx), key.access_key)
    finally:
        store.close()


def test_the_region_setting() -> None:
    assert Settings.load({}).ec2_region == "RegionOne"
    assert Settings.load({"OCCI_EC2_REGION": "eu-west-1"}).ec2_region == "eu-west-1"
    with pytest.raises(SettingsError, match="ec2_region must be a region name"):
        Settings.load({"OCCI_EC2_REGION": "no/such region"})

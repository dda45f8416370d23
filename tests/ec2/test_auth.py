"""Who may call the EC2 API, through boto3 and hand-signed requests: SigV4 with a wrong secret,
an unknown key, a skewed clock, another region; DryRun for a member and a reader; the GET
query form and presigned URLs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import botocore.auth
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.ec2.conftest import REGION, Ec2Server, signed


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_a_wrong_secret_or_an_unknown_key_is_auth_failure(ec2_client: Any) -> None:
    with pytest.raises(ClientError) as err:
        ec2_client("member", secret="not-the-secret").describe_regions()
    assert error_of(err) == ("AuthFailure", 401)
    with pytest.raises(ClientError) as err:
        ec2_client("member", secret="x" * 40).describe_instances()
    assert error_of(err) == ("AuthFailure", 401)


def test_an_unknown_key_and_another_region(ec2_server: Ec2Server) -> None:
    for key, region in (("OCCINOSUCHKEY0000000", "RegionOne"), (None, "eu-west-1")):
        known = ec2_server.keys["member"]
        client = boto3.client(
            "ec2",
            endpoint_url=ec2_server.endpoint,
            region_name=region,
            aws_access_key_id=key or known.access_key,
            aws_secret_access_key=known.secret,
        )
        with pytest.raises(ClientError) as err:
            client.describe_regions()
        assert error_of(err) == ("AuthFailure", 401)


def test_a_skewed_clock_is_request_expired(
    ec2_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = botocore.auth.get_current_datetime
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *a, **k: real(*a, **k) - timedelta(minutes=20)
    )
    with pytest.raises(ClientError) as err:
        ec2_client().describe_regions()
    assert error_of(err) == ("RequestExpired", 400)
    # four minutes is within the window
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *a, **k: real(*a, **k) + timedelta(minutes=4)
    )
    assert ec2_client().describe_regions()["Regions"][0]["RegionName"] == "RegionOne"


def test_dry_run_asks_without_doing(ec2: Any, ec2_client: Any) -> None:
    before = ec2.describe_instances()
    count = sum(len(r["Instances"]) for r in before["Reservations"])
    with pytest.raises(ClientError) as err:
        ec2.run_instances(ImageId="cirros", MinCount=1, MaxCount=1, DryRun=True)
    assert error_of(err) == ("DryRunOperation", 412)
    after = ec2.describe_instances()
    assert sum(len(r["Instances"]) for r in after["Reservations"]) == count
    reader = ec2_client("reader")
    for call, kw in (
        (reader.run_instances, {"ImageId": "cirros", "MinCount": 1, "MaxCount": 1}),
        (reader.create_volume, {"Size": 1, "AvailabilityZone": "default"}),
        (reader.create_key_pair, {"KeyName": "nope"}),
    ):
        with pytest.raises(ClientError) as err:
            call(DryRun=True, **kw)
        assert error_of(err) == ("UnauthorizedOperation", 403)
        with pytest.raises(ClientError) as err:
            call(**kw)
        assert error_of(err) == ("UnauthorizedOperation", 403)
    # a reader reads
    assert reader.describe_instances()["Reservations"] == after["Reservations"]
    with pytest.raises(ClientError) as err:
        reader.describe_instances(DryRun=True)
    assert error_of(err) == ("DryRunOperation", 412)


def test_get_query_form_and_presigned_urls(ec2_server: Ec2Server) -> None:
    params = {"Action": "DescribeRegions", "Version": "2016-11-15"}
    for r in (
        signed(ec2_server, params, method="GET"),
        signed(ec2_server, params, presign=True),
        signed(ec2_server, params),
    ):
        assert r.status_code == 200, r.text
        assert b"<regionName>RegionOne</regionName>" in r.content
        assert r.headers["Content-Type"].startswith("text/xml")
    # the endpoint without its trailing slash is the same API
    key = ec2_server.keys["member"]
    bare = boto3.client(
        "ec2",
        endpoint_url=ec2_server.live.url + "/ec2",
        region_name="RegionOne",
        aws_access_key_id=key.access_key,
        aws_secret_access_key=key.secret,
    )
    assert bare.describe_regions()["Regions"][0]["RegionName"] == "RegionOne"
    presigned = signed(ec2_server, params, presign=True)
    tampered = presigned.request.url.replace("DescribeRegions", "DescribeImages")
    r = requests.get(tampered, timeout=30)
    assert r.status_code == 401 and b"<Code>AuthFailure</Code>" in r.content


@pytest.mark.parametrize(
    "headers, code",
    [
        ({}, "AuthFailure"),
        ({"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, "IncompleteSignature"),
        ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, "IncompleteSignature"),
        (
            {
                "Authorization": "AWS4-HMAC-SHA256 Credential=OCCIX/20260101/RegionOne/ec2/"
                "aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
                "X-Amz-Date": "20260101T000000Z",
            },
            "RequestExpired",
        ),
    ],
)
def test_unsigned_and_malformed_signatures(
    ec2_server: Ec2Server, headers: dict[str, str], code: str
) -> None:
    r = requests.post(
        ec2_server.endpoint,
        data={"Action": "DescribeRegions", "Version": "2016-11-15"},
        headers=headers,
        timeout=30,
    )
    assert r.status_code in (400, 401)
    assert f"<Code>{code}</Code>".encode() in r.content
    assert b"<RequestID>" in r.content


def test_a_chunked_body_is_read_whole(ec2_server: Ec2Server) -> None:
    key = ec2_server.keys["member"]
    body = "Action=DescribeRegions&Version=2016-11-15"
    req = AWSRequest(
        method="POST",
        url=ec2_server.endpoint,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials(key.access_key, key.secret), "ec2", REGION).add_auth(req)
    headers = {k: v for k, v in req.prepare().headers.items() if k != "Content-Length"}
    r = requests.post(
        ec2_server.endpoint,
        data=iter([body[:10].encode(), body[10:].encode()]),
        headers=headers,
        timeout=30,
    )
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 200, r.text

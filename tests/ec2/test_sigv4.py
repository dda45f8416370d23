"""occi.ec2.sigv4 alone, against botocore's own signer: what it accepts (the header and the
presigned forms), and each reason it refuses (a wrong secret, a changed body or header, the
scope, the window, malformed values), with EC2's code for each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from occi.ec2 import sigv4

CREDS = Credentials("OCCIABCDEFGHIJKLMNOP", "s3cr3t/with+odd=chars")
URL = "http://127.0.0.1:8080/ec2/"
BODY = "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=a%20b"


def post(body: str = BODY, region: str = "RegionOne", service: str = "ec2") -> tuple[dict, bytes]:
    req = AWSRequest(
        method="POST",
        url=URL,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(CREDS, service, region).add_auth(req)
    p = req.prepare()
    headers = {k.lower(): v for k, v in p.headers.items()}
    headers["host"] = "127.0.0.1:8080"
    return headers, body.encode()


def check(
    headers: dict, body: bytes, secret: str = CREDS.secret_key, query=(), path="/ec2/"
) -> None:
    signed = sigv4.parse(headers, list(query))
    assert signed is not None
    sigv4.check_scope(signed, "RegionOne")
    sigv4.verify(
        signed, secret, "POST" if body or not query else "GET", path, list(query), headers, body
    )


def code_of(fn) -> str:
    with pytest.raises(sigv4.SignatureError) as err:
        fn()
    return err.value.code


def test_botocore_signatures_verify() -> None:
    headers, body = post()
    check(headers, body)


def test_presigned_urls_verify_and_expire() -> None:
    req = AWSRequest(method="GET", url=URL + "?Action=DescribeRegions&Version=2016-11-15")
    SigV4QueryAuth(CREDS, "ec2", "RegionOne", expires=60).add_auth(req)
    u = urlsplit(req.prepare().url)
    query = parse_qsl(u.query, keep_blank_values=True)
    headers = {"host": "127.0.0.1:8080"}
    signed = sigv4.parse(headers, query)
    assert signed is not None and signed.presigned
    sigv4.check_scope(signed, "RegionOne")
    sigv4.verify(signed, CREDS.secret_key, "GET", u.path, query, headers, b"")
    later = datetime.now(UTC) + timedelta(seconds=120)
    assert code_of(lambda: sigv4.check_scope(signed, "RegionOne", later)) == "RequestExpired"


def test_what_is_refused() -> None:
    headers, body = post()
    assert code_of(lambda: check(headers, body, secret="wrong")) == "AuthFailure"
    assert code_of(lambda: check(headers, body + b"&InstanceId.1=i-1")) == "AuthFailure"
    moved = dict(headers, host="evil.example:8080")
    assert code_of(lambda: check(moved, body)) == "AuthFailure"
    assert code_of(lambda: check(headers, body, path="/ec2/other")) == "AuthFailure"
    claimed = dict(headers, **{"x-amz-content-sha256": "0" * 64})
    assert code_of(lambda: check(claimed, body)) == "AuthFailure"
    for region, service in (("eu-west-1", "ec2"), ("RegionOne", "s3")):
        h, b = post(region=region, service=service)
        assert code_of(lambda h=h, b=b: check(h, b)) == "AuthFailure"
    signed = sigv4.parse(headers, [])
    assert signed is not None
    for minutes in (-6, 6):
        when = datetime.now(UTC) + timedelta(minutes=minutes)
        assert code_of(lambda w=when: sigv4.check_scope(signed, "RegionOne", w)) == "RequestExpired"
    sigv4.check_scope(signed, "RegionOne", datetime.now(UTC) + timedelta(minutes=4))


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h.update(authorization="AWS4-HMAC-SHA1 Credential=x"),
        lambda h: h.update(authorization=h["authorization"].replace("Signature=", "Sig=")),
        lambda h: h.update(authorization=h["authorization"].replace("/aws4_request", "/v3")),
        lambda h: h.update(authorization=h["authorization"].replace("host;", "")),
        lambda h: h.update(authorization=h["authorization"].replace(";x-amz-date", "")),
        lambda h: h.update(authorization=h["authorization"].replace("content-type;", "zzz;")),
        lambda h: h.update(authorization=h["authorization"][:-3]),
        lambda h: h.update({"x-amz-date": "yesterday"}),
        lambda h: h.pop("x-amz-date"),
        lambda h: h.pop("content-type"),
    ],
)
def test_malformed_signatures_are_incomplete(change) -> None:
    headers, body = post()
    change(headers)
    assert code_of(lambda: check(headers, body)) == "IncompleteSignature"


def test_unsigned_requests_carry_no_signature() -> None:
    assert sigv4.parse({"host": "x"}, [("Action", "DescribeRegions")]) is None

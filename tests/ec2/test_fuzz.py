"""Generated hostile EC2 requests through the real WSGI app (SQLite + simulator): signed ones
with odd actions, parameter names and values, and unsigned or mis-signed ones. Whatever is
sent: never a 5xx but for capacity, and always EC2's XML (an answer or an error document with
a code)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from falcon import testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from occi.api.wsgi import build
from occi.ec2 import credentials
from occi.identity.store import IdentityTx
from occi.inventory.secrets import Cipher
from occi.settings import Settings
from tests.ec2.model_check import NAMESPACE

HOST = "falconframework.org"
KEY = "fuzz-server-key-0123456789abcdef"
FUZZ = settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ACTIONS = [
    "DescribeInstances",
    "RunInstances",
    "StopInstances",
    "TerminateInstances",
    "DescribeImages",
    "CreateImage",
    "CreateKeyPair",
    "ImportKeyPair",
    "DescribeKeyPairs",
    "CreateVolume",
    "AttachVolume",
    "DescribeVolumes",
    "CreateTags",
    "DescribeTags",
    "DeleteTags",
    "DescribeRegions",
    "Nope",
    "",
]
NAMES = [
    "InstanceId.1",
    "InstanceId.0",
    "InstanceId.99999",
    "ImageId",
    "MinCount",
    "MaxCount",
    "InstanceType",
    "KeyName",
    "UserData",
    "Placement.AvailabilityZone",
    "Filter.1.Name",
    "Filter.1.Value.1",
    "Filter.1.Value.x",
    "TagSpecification.1.ResourceType",
    "TagSpecification.1.Tag.1.Key",
    "Tag.1.Key",
    "Tag.1.Value",
    "ResourceId.1",
    "MaxResults",
    "NextToken",
    "DryRun",
    "Size",
    "VolumeId",
    "Device",
    "PublicKeyMaterial",
    "Name",
    "Filter.1",
    "a.b.c.d.e.f",
]
hostile = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "cirros",
            "i-" + "0" * 32,
            "vol-x",
            "ami-1",
            "-1",
            "0",
            "5",
            "101",
            "9" * 40,
            "true",
            "tag:x",
            "instance-state-name",
            "instance",
            "\x00",
            "\ud800",
            "<x>",
            "*",
            "?",
        ]
    ),
)
params = st.dictionaries(
    st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=10)), hostile, max_size=8
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Credentials]]:
    db = tmp_path_factory.mktemp("ec2fuzz") / "fuzz.db"
    mapping = {"database_url": f"sqlite:///{db}", "auth": "basic,token", "secret_key": KEY}
    app, service = build(Settings.from_mapping(mapping), upgrade=True)
    with service.store.begin() as tx:
        ident = IdentityTx(tx)
        ident.create_project("fz")
        ident.create_user("fuzzer")
        ident.grant("fuzzer", "fz", "member")
        key, secret = credentials.create(ident, Cipher(KEY, "tests"), "fuzzer", "fz")
    try:
        yield testing.TestClient(app), Credentials(key.access_key, secret)
    finally:
        assert service.runner is not None
        service.runner.stop()
        service.store.close()


def send(client: Any, creds: Credentials | None, fields: dict[str, str], headers=None) -> Any:
    body = urlencode(fields, quote_via=quote, errors="surrogatepass")
    hdrs = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Host": HOST}
    if creds is not None:
        req = AWSRequest(method="POST", url=f"http://{HOST}/ec2/", data=body, headers=dict(hdrs))
        SigV4Auth(creds, "ec2", "RegionOne").add_auth(req)
        hdrs = {k: v for k, v in req.prepare().headers.items()}
    hdrs.update(headers or {})
    return client.simulate_post("/ec2/", body=body, headers=hdrs)


def ec2_xml(r: Any) -> Any:
    assert r.headers.get("content-type", "").startswith("text/xml"), r.headers
    root = etree.fromstring(r.content)
    if r.status_code >= 400:
        assert root.tag == "Response" and root.findtext("Errors/Error/Code"), r.text
    else:
        assert root.tag.startswith(NAMESPACE), r.text
    return root


@FUZZ
@given(action=st.sampled_from(ACTIONS), fields=params)
def test_signed_hostile_parameters_are_ec2_errors(app: Any, action: str, fields: dict) -> None:
    client, creds = app
    r = send(client, creds, {"Action": action, "Version": "2016-11-15", **fields})
    root = ec2_xml(r)
    if r.status_code >= 500:  # only when no host has room
        assert root.findtext("Errors/Error/Code") == "InsufficientInstanceCapacity", r.text


@FUZZ
@given(
    auth=st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            [
                "AWS4-HMAC-SHA256 ",
                "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=" + "a" * 64,
            ]
        ),
    ),
    date=st.one_of(st.text(max_size=20), st.just("20260101T000000Z")),
)
def test_unsigned_and_forged_requests_are_refused(app: Any, auth: str, date: str) -> None:
    client, _ = app
    headers = {"Authorization": auth, "X-Amz-Date": date}
    try:
        headers = {k: v.encode("latin-1").decode("latin-1") for k, v in headers.items()}
    except UnicodeEncodeError:
        return  # not sendable in a header
    r = send(client, None, {"Action": "DescribeRegions"}, headers)
    ec2_xml(r)
    assert r.status_code in (400, 401), r.text


def test_failed_signatures_are_throttled(tmp_path: Any) -> None:
    """After auth_fail_limit wrong signatures from one address, even a right one waits."""
    mapping = {
        "database_url": f"sqlite:///{tmp_path}/throttle.db",
        "auth": "basic,token",
        "secret_key": KEY,
        "auth_fail_limit": "3",
    }
    app, service = build(Settings.from_mapping(mapping), upgrade=True, run_jobs=False)
    try:
        with service.store.begin() as tx:
            ident = IdentityTx(tx)
            ident.create_project("th")
            ident.create_user("guesser")
            ident.grant("guesser", "th", "member")
            key, secret = credentials.create(ident, Cipher(KEY, "tests"), "guesser", "th")
        client = testing.TestClient(app)
        right = Credentials(key.access_key, secret)
        wrong = Credentials(key.access_key, "guess")
        assert send(client, right, {"Action": "DescribeRegions"}).status_code == 200
        for _ in range(3):
            r = send(client, wrong, {"Action": "DescribeRegions"})
            assert r.status_code == 401 and b"AuthFailure" in r.content
        r = send(client, right, {"Action": "DescribeRegions"})
        assert r.status_code == 503
        assert b"<Code>RequestLimitExceeded</Code>" in r.content
    finally:
        service.store.close()

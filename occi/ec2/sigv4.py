"""AWS Signature Version 4, verified on the server: the request's signature is computed again
from its method, path, query, signed headers and body with the secret of its access key, and
compared in constant time. Pure functions over a request's parts; no HTTP framework, no SQL.

Both forms clients send are read: the `Authorization: AWS4-HMAC-SHA256 Credential=...,
SignedHeaders=..., Signature=...` header (boto3, the aws CLI) and the presigned query string
(`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-SignedHeaders`, `X-Amz-Signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "ec2"
#: how far a request's X-Amz-Date may be from the server's clock
WINDOW = timedelta(minutes=5)
#: longest presigned validity accepted (X-Amz-Expires), as AWS: seven days
MAX_EXPIRES = 7 * 24 * 3600
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_ACCESS_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]{1,64}")
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class SignatureError(Exception):
    """The request is not signed as SigV4 wants. `code` is EC2's: IncompleteSignature (400) for
    a malformed one, AuthFailure (401) for a wrong one, RequestExpired (400) for a stale one."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Signed:
    """What a request says about its signature, before it is checked."""

    access_key: str
    date: str  # the scope's yyyymmdd
    region: str
    service: str
    amz_date: str  # yyyymmddThhmmssZ
    signed_headers: tuple[str, ...]
    signature: str
    presigned: bool = False
    expires: int | None = None


def _incomplete(message: str) -> SignatureError:
    return SignatureError("IncompleteSignature", message)


def _credential(value: str) -> tuple[str, str, str, str]:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise _incomplete(
            "the credential must be ACCESS_KEY/yyyymmdd/REGION/ec2/aws4_request, "
            f"not {value[:120]!r}"
        )
    key, date, region, service = parts[:4]
    if not _ACCESS_KEY.fullmatch(key):
        raise _incomplete("the credential's access key id is malformed")
    if not re.fullmatch(r"\d{8}", date):
        raise _incomplete("the credential's date must be yyyymmdd")
    return key, date, region, service


def _signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(value.split(";")) if value else ()
    if not names or len(names) > 64 or not all(_HEADER_NAME.fullmatch(n) for n in names):
        raise _incomplete("SignedHeaders must list lower-case header names joined by ';'")
    if list(names) != sorted(set(names)):
        raise _incomplete("SignedHeaders must be sorted and without repeats")
    if "host" not in names:
        raise _incomplete("SignedHeaders must include host")
    return names


def parse(headers: Mapping[str, str], query: Sequence[tuple[str, str]]) -> Signed | None:
    """The signature a request carries (header names lower-case; `query` decoded pairs), or
    None when it carries none. IncompleteSignature when it is malformed."""
    auth = headers.get("authorization", "").strip()
    q = dict(query)
    if auth:
        algorithm, _, rest = auth.partition(" ")
        if algorithm != ALGORITHM:
            raise _incomplete(f"the Authorization header must use {ALGORITHM}")
        fields: dict[str, str] = {}
        for part in rest.split(","):
            name, eq, value = part.strip().partition("=")
            if not eq or name in fields:
                raise _incomplete("the Authorization header is malformed")
            fields[name] = value.strip()
        missing = [f for f in ("Credential", "SignedHeaders", "Signature") if f not in fields]
        if missing:
            raise _incomplete(f"the Authorization header lacks {', '.join(missing)}")
        amz_date = headers.get("x-amz-date", "").strip()
        if not amz_date:
            raise _incomplete("a signed request carries X-Amz-Date")
        key, date, region, service = _credential(fields["Credential"])
        names = _signed_headers(fields["SignedHeaders"])
        if "x-amz-date" not in names:
            raise _incomplete("SignedHeaders must include x-amz-date")
        signature, presigned, expires = fields["Signature"], False, None
    elif "X-Amz-Signature" in q or "X-Amz-Algorithm" in q:
        if q.get("X-Amz-Algorithm") != ALGORITHM:
            raise _incomplete(f"X-Amz-Algorithm must be {ALGORITHM}")
        for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"):
            if name not in q:
                raise _incomplete(f"a presigned request carries {name}")
        key, date, region, service = _credential(q["X-Amz-Credential"])
        names = _signed_headers(q["X-Amz-SignedHeaders"])
        amz_date, signature, presigned = q["X-Amz-Date"], q["X-Amz-Signature"], True
        expires = None
        if "X-Amz-Expires" in q:
            text = q["X-Amz-Expires"]
            if not text.isdigit() or len(text) > 7 or not 1 <= int(text) <= MAX_EXPIRES:
                raise _incomplete(f"X-Amz-Expires must be 1 to {MAX_EXPIRES} seconds")
            expires = int(text)
    else:
        return None
    if not _AMZ_DATE.fullmatch(amz_date):
        raise _incomplete("X-Amz-Date must be yyyymmddThhmmssZ")
    if not _SIGNATURE.fullmatch(signature):
        raise _incomplete("the signature must be 64 lower-case hex digits")
    for name in names:
        if name != "host" and name not in headers:
            raise _incomplete(f"the signed header {name} is not in the request")
    return Signed(key, date, region, service, amz_date, names, signature, presigned, expires)


def check_scope(signed: Signed, region: str, now: datetime | None = None) -> None:
    """The scope names this server's region and the ec2 service, its date is the day of
    X-Amz-Date, and X-Amz-Date is within WINDOW of `now` (or, presigned, not expired)."""
    if signed.service != SERVICE:
        raise SignatureError(
            "AuthFailure",
            f"the credential is scoped to the service {signed.service[:40]!r}, not ec2",
        )
    if signed.region != region:
        raise SignatureError(
            "AuthFailure",
            f"the credential is scoped to the region {signed.region[:40]!r}; this server is "
            f"the region {region}",
        )
    if signed.amz_date[:8] != signed.date:
        raise SignatureError("AuthFailure", "the credential's date is not the day of X-Amz-Date")
    when = datetime.strptime(signed.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    if signed.presigned and signed.expires is not None:
        if now > when + timedelta(seconds=signed.expires) or when - now > WINDOW:
            raise SignatureError("RequestExpired", "the presigned request has expired")
        return
    if abs(now - when) > WINDOW:
        raise SignatureError(
            "RequestExpired",
            f"the request's X-Amz-Date {signed.amz_date} is more than 5 minutes from the "
            f"server's time {now:%Y%m%dT%H%M%SZ}",
        )


def _quote(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_query(query: Sequence[tuple[str, str]], presigned: bool) -> str:
    pairs = sorted(
        (_quote(k), _quote(v)) for k, v in query if not (presigned and k == "X-Amz-Signature")
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_request(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    signed: Signed,
    body: bytes,
) -> str:
    """SigV4's canonical request (header names lower-case; `query` decoded pairs)."""
    lines = []
    for name in signed.signed_headers:
        value = headers.get(name, "")
        lines.append(f"{name}:{' '.join(value.split())}\n")
    payload = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
    if not signed.presigned:
        claimed = headers.get("x-amz-content-sha256")
        if claimed is not None and claimed != payload:
            raise SignatureError("AuthFailure", "X-Amz-Content-SHA256 does not match the body")
    return "\n".join(
        [
            method.upper(),
            quote(unquote(path) or "/", safe="/~"),
            canonical_query(query, signed.presigned),
            "".join(lines),
            ";".join(signed.signed_headers),
            payload,
        ]
    )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signature(secret: str, signed: Signed, request: str) -> str:
    """The signature of a canonical request under `secret` and the request's scope."""
    scope = f"{signed.date}/{signed.region}/{signed.service}/aws4_request"
    digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
    to_sign = f"{ALGORITHM}\n{signed.amz_date}\n{scope}\n{digest}"
    key = _hmac(("AWS4" + secret).encode("utf-8"), signed.date)
    for part in (signed.region, signed.service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify(
    signed: Signed,
    secret: str,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """AuthFailure unless the request's signature is the one `secret` makes."""
    request = canonical_request(method, path, query, headers, signed, body)
    expected = signature(secret, signed, request)
    if not hmac.compare_digest(expected.encode("ascii"), signed.signature.encode("ascii")):
        raise SignatureError(
            "AuthFailure",
            "the request signature does not match: check the secret access key and the "
            "signing method",
        )

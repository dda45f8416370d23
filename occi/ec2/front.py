"""The EC2 front's falcon resource: every request under /ec2/ (POST form or GET query) is read,
its SigV4 signature verified against the access key's secret, its action looked up and
carried out through the service (occi.ec2.actions), and answered in EC2's XML; every error,
the service's included, is answered as EC2's error document. The OCCI authentication
middleware leaves these paths alone, and this signature is accepted nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import falcon

from occi import errors
from occi.context import RequestContext, new_request_id
from occi.ec2 import sigv4, xml
from occi.ec2.errors import Ec2Error, from_occi, invalid
from occi.ec2.params import MAX_PARAMS, Params
from occi.identity import access_keys
from occi.identity.throttle import Throttle
from occi.inventory.secrets import Cipher

if TYPE_CHECKING:
    from occi.service import Service
    from occi.service.ec2_records import Ec2Records

log = logging.getLogger(__name__)

#: where the front is served (endpoint_url=http://host:port/ec2/)
PREFIX = "/ec2"
#: the regular expression of its paths, for falcon's sink
PATHS = r"^/ec2(/.*)?$"
_FORM = "application/x-www-form-urlencoded"


@dataclass
class Call:
    """One EC2 request as the actions see it."""

    front: Ec2Front
    ctx: RequestContext
    params: Params
    request_id: str
    endpoint: str

    @property
    def service(self) -> Service:
        return self.front.service

    @property
    def records(self) -> Ec2Records:
        """The project's key pairs, tags and instance records (the service's)."""
        return self.front.service.ec2_records


#: an action: its handler, its area (for error codes) and what it asks of the service
#: (the operation DryRun checks: read, create, act, delete, update)
@dataclass(frozen=True)
class Action:
    handler: Callable[[Call], dict[str, Any]]
    area: str
    operation: str


class Ec2Front:
    """The falcon sink of /ec2/ (and /ec2)."""

    def __init__(
        self,
        service: Service,
        cipher: Cipher | Callable[[], Cipher],
        *,
        region: str = "RegionOne",
        max_body: int = 1 << 20,
        base_url: str = "",
        actions: dict[str, Action] | None = None,
        throttle: Throttle | None = None,
    ):
        if actions is None:
            from occi.ec2.actions import ACTIONS

            actions = ACTIONS
        self.service = service
        self._cipher = cipher
        self.region = region
        self.max_body = max_body
        self.base_url = base_url.rstrip("/")
        self.actions = actions
        #: failed signatures per client address and access key (the auth_fail_* settings)
        self.throttle = throttle or Throttle(20, 60.0)

    @property
    def cipher(self) -> Cipher:
        """The server's key for the stored secrets (made at the first use)."""
        if not isinstance(self._cipher, Cipher):
            self._cipher = self._cipher()
        return self._cipher

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: object) -> None:
        rid = getattr(req.context, "request_id", None) or new_request_id()
        req.context.route = "ec2"
        area = ""
        try:
            if req.method not in ("GET", "POST"):
                raise Ec2Error("InvalidAction", "EC2 requests are GET or POST", 400)
            call, action = self._read(req, rid)
            area = action.area
            req.context.audit_operation = f"ec2 {call.params.get('Action')}"
            if action.operation == "read":
                req.context.not_audited = True
            if call.params.flag("DryRun"):
                self.service.authorize(call.ctx, action.operation)
                raise Ec2Error(
                    "DryRunOperation",
                    "Request would have succeeded, but DryRun flag is set.",
                    412,
                )
            data = action.handler(call)
            resp.status = falcon.HTTP_200
            resp.content_type = xml.CONTENT_TYPE
            resp.data = xml.answer(str(call.params.get("Action")), data, rid)
        except Exception as exc:  # every failure is EC2's error document
            self._fail(req, resp, exc, area, rid)

    # ------------------------------------------------------------------ reading
    def _read(self, req: falcon.Request, rid: str) -> tuple[Call, Action]:
        query = _pairs(req.query_string or "", "the query string")
        body = b""
        if req.method == "POST":
            length = req.content_length
            if length is not None and length > self.max_body:
                raise invalid(f"the request body is above {self.max_body} bytes")
            if length:
                body = req.bounded_stream.read(self.max_body + 1)
            elif length is None and req.get_header("Transfer-Encoding"):
                body = req.stream.read(self.max_body + 1)  # chunked: the server de-chunks it
            if len(body) > self.max_body:
                raise invalid(f"the request body is above {self.max_body} bytes")
        headers = {k.lower(): v for k, v in req.headers.items()}
        signed = sigv4.parse(headers, query)
        if signed is None:
            raise Ec2Error(
                "AuthFailure",
                "the request is not signed: send it with AWS Signature Version 4 and an "
                "access key of this server (occi-server credentials create)",
                401,
            )
        sigv4.check_scope(signed, self.region)
        address = req.remote_addr or "-"
        req.context.ec2_client = (address, signed.access_key)
        wait = self.throttle.retry_after(address, signed.access_key)
        if wait is not None:
            raise Ec2Error(
                "RequestLimitExceeded",
                f"too many failed signatures from this address or for this key: try again in "
                f"{wait} seconds",
                503,
            )
        found = access_keys.lookup(self.service.store, self.cipher, signed.access_key)
        if found is None:
            raise Ec2Error(
                "AuthFailure", "AWS was not able to validate the provided access credentials", 401
            )
        key = found.key
        path = (req.env.get("RAW_URI") or req.path or "/").split("?", 1)[0]
        sigv4.verify(signed, found.secret, req.method, path, query, headers, body)
        if key.disabled:
            raise Ec2Error("AuthFailure", "the access key's user is disabled", 401)
        ctx = RequestContext(key.user_name, key.project_id, found.roles, rid, key.project_name)
        req.context.occi_context = ctx
        pairs = [(k, v) for k, v in query if not k.startswith("X-Amz-")]
        if body:
            media = (req.content_type or "").split(";")[0].strip().lower()
            if media != _FORM:
                raise invalid(f"a POST carries {_FORM}, not {media or 'no content type'}")
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise invalid("the request body is not UTF-8") from None
            pairs += _pairs(text, "the request body")
        params = Params(pairs)
        name = params.required("Action")
        action = self.actions.get(name)
        if action is None:
            raise Ec2Error(
                "InvalidAction", f"the action {name[:80]} is not valid for this web service"
            )
        endpoint = (self.base_url or req.prefix) + PREFIX + "/"
        return Call(self, ctx, params, rid, endpoint), action

    # ------------------------------------------------------------------ errors
    def _fail(
        self, req: falcon.Request, resp: falcon.Response, exc: Exception, area: str, rid: str
    ) -> None:
        if isinstance(exc, sigv4.SignatureError):
            status = 401 if exc.code == "AuthFailure" else 400
            err = Ec2Error(exc.code, exc.message, status)
        elif isinstance(exc, Ec2Error):
            err = exc
        elif isinstance(exc, errors.OcciError):
            if exc.status >= 500 and not isinstance(exc, errors.NoCapacity):
                log.error("EC2 %s: %s", area or "request", exc.message)
            err = from_occi(exc, area)
        else:
            log.error("unhandled error on EC2 %s %s", req.method, req.path, exc_info=exc)
            err = Ec2Error("InternalError", "the server failed to handle this request", 500)
        client = getattr(req.context, "ec2_client", None)
        if err.code == "AuthFailure" and client is not None:  # a wrong key or signature
            self.throttle.failed(*client)
            self.throttle.warn(
                "EC2 authentication failed: address %s, access key %s: %s",
                client[0],
                client[1],
                err.message,
            )
        req.context.error = (err.code, err.message)  # for the audit log
        resp.status = falcon.code_to_http_status(err.status)
        resp.content_type = xml.CONTENT_TYPE
        resp.data = xml.error(err.code, err.message, rid)


def _pairs(text: str, where: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_PARAMS + 20
        )
    except ValueError:
        raise invalid(f"{where} holds more than {MAX_PARAMS} parameters") from None

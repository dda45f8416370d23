"""The one error hierarchy the service raises; occi.api maps each to its HTTP status.

Messages are for a person: say what was wrong and what to send instead. Each error also has a
`code`, a stable machine-readable string a front maps (the OCCI front sends it beside the
message; an EC2 front would map it to its own codes): each class has one, and a raise may give
a finer one (`code="state_conflict"`). README.md lists them.
"""

from __future__ import annotations


class OcciError(Exception):
    status = 500
    reason = "Internal Server Error"
    code = "internal_error"
    #: the path of an entity the failed request made anyway (a create whose platform work
    #: failed leaves the entity in state `error`): the API sends it as `Location`
    location: str | None = None

    def __init__(
        self, message: str, *, headers: dict[str, str] | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        if code is not None:
            self.code = code


class BadRequest(OcciError):
    status, reason = 400, "Bad Request"
    code = "bad_request"


class Unauthorized(OcciError):
    status, reason = 401, "Unauthorized"
    code = "unauthorized"


class Forbidden(OcciError):
    status, reason = 403, "Forbidden"
    code = "forbidden"


class QuotaExceeded(Forbidden):
    """The request would take its project past one of its quotas (occi.service.quotas)."""

    code = "quota_exceeded"


class NotFound(OcciError):
    status, reason = 404, "Not Found"
    code = "not_found"


class MethodNotAllowed(OcciError):
    status, reason = 405, "Method Not Allowed"
    code = "method_not_allowed"

    def __init__(self, message: str, allowed: list[str], *, code: str | None = None):
        super().__init__(message, headers={"Allow": ", ".join(allowed)}, code=code)
        self.allowed = allowed


class NotAcceptable(OcciError):
    status, reason = 406, "Not Acceptable"
    code = "not_acceptable"


class RequestTimeout(OcciError):
    status, reason = 408, "Request Timeout"
    code = "request_timeout"


class Conflict(OcciError):
    status, reason = 409, "Conflict"
    code = "conflict"


class IdTaken(Conflict):
    """The id is used by a stored entity (a concurrent request may have just stored it)."""

    code = "id_taken"


class PreconditionFailed(OcciError):
    status, reason = 412, "Precondition Failed"
    code = "precondition_failed"


class PayloadTooLarge(OcciError):
    status, reason = 413, "Payload Too Large"
    code = "payload_too_large"


class UnsupportedMediaType(OcciError):
    status, reason = 415, "Unsupported Media Type"
    code = "unsupported_media_type"


class TooManyRequests(OcciError):
    """Too many failed authentications from the client's address or for its user name; the
    `Retry-After` header says when to try again."""

    status, reason = 429, "Too Many Requests"
    code = "too_many_requests"


class NotImplementedYet(OcciError):
    status, reason = 501, "Not Implemented"
    code = "not_implemented"


class ServiceUnavailable(OcciError):
    status, reason = 503, "Service Unavailable"
    code = "service_unavailable"


class BackendError(OcciError):
    """The hypervisor refused or failed; the entity goes to `error` with this message."""

    status, reason = 502, "Bad Gateway"
    code = "platform_failed"


class PlatformUnavailable(ServiceUnavailable):
    """The hypervisor platform could not be reached (connection refused, daemon down)."""

    code = "platform_unreachable"


#: the code of each HTTP status, for errors that reach a front without one (its own framework's)
CODES_BY_STATUS: dict[int, str] = {
    cls.status: cls.code
    for cls in (
        OcciError,
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        NotAcceptable,
        RequestTimeout,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        UnsupportedMediaType,
        TooManyRequests,
        NotImplementedYet,
        ServiceUnavailable,
        BackendError,
    )
}


def code_for_status(status: int) -> str:
    """The code of an error known only by its HTTP status ("http_<status>" for the rest)."""
    return CODES_BY_STATUS.get(status, f"http_{status}")


class NoCapacity(ServiceUnavailable):
    """No host of the zone has room for what a create or a resize asks (nothing is stored)."""

    code = "no_capacity"

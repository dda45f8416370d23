"""The one error hierarchy the service raises; occi.api maps each to its HTTP status.

Messages are for a person: say what was wrong and what to send instead.
"""

from __future__ import annotations


class OcciError(Exception):
    status = 500
    reason = "Internal Server Error"
    #: the path of an entity the failed request made anyway (a create whose platform work
    #: failed leaves the entity in state `error`): the API sends it as `Location`
    location: str | None = None

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(OcciError):
    status, reason = 400, "Bad Request"


class Unauthorized(OcciError):
    status, reason = 401, "Unauthorized"


class Forbidden(OcciError):
    status, reason = 403, "Forbidden"


class NotFound(OcciError):
    status, reason = 404, "Not Found"


class MethodNotAllowed(OcciError):
    status, reason = 405, "Method Not Allowed"

    def __init__(self, message: str, allowed: list[str]):
        super().__init__(message, headers={"Allow": ", ".join(allowed)})
        self.allowed = allowed


class NotAcceptable(OcciError):
    status, reason = 406, "Not Acceptable"


class RequestTimeout(OcciError):
    status, reason = 408, "Request Timeout"


class Conflict(OcciError):
    status, reason = 409, "Conflict"


class IdTaken(Conflict):
    """The id is used by a stored entity (a concurrent request may have just stored it)."""


class PreconditionFailed(OcciError):
    status, reason = 412, "Precondition Failed"


class PayloadTooLarge(OcciError):
    status, reason = 413, "Payload Too Large"


class UnsupportedMediaType(OcciError):
    status, reason = 415, "Unsupported Media Type"


class NotImplementedYet(OcciError):
    status, reason = 501, "Not Implemented"


class ServiceUnavailable(OcciError):
    status, reason = 503, "Service Unavailable"


class BackendError(OcciError):
    """The hypervisor refused or failed; the entity goes to `error` with this message."""

    status, reason = 502, "Bad Gateway"


class PlatformUnavailable(ServiceUnavailable):
    """The hypervisor platform could not be reached (connection refused, daemon down)."""

"""EC2's errors: the front's own (Ec2Error, with EC2's code and HTTP status) and the one mapping
of the service's errors (occi.errors) to EC2 codes, by the area of the action that met them.
No HTTP framework here.
"""

from __future__ import annotations

from occi import errors

#: API version this front speaks (the only one botocore's ec2 model knows)
VERSION = "2016-11-15"


class Ec2Error(Exception):
    """An EC2 error answer: `code` (e.g. InvalidParameterValue) and its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def invalid(message: str) -> Ec2Error:
    return Ec2Error("InvalidParameterValue", message)


def missing(name: str) -> Ec2Error:
    return Ec2Error("MissingParameter", f"the request must contain the parameter {name}")


#: what an area's entity is called in EC2's NotFound codes
NOT_FOUND = {
    "instance": "InvalidInstanceID.NotFound",
    "volume": "InvalidVolume.NotFound",
    "image": "InvalidAMIID.NotFound",
    "keypair": "InvalidKeyPair.NotFound",
    "attachment": "InvalidAttachment.NotFound",
}
#: the state conflicts of each area
STATE = {"instance": "IncorrectInstanceState", "volume": "IncorrectState"}
#: each area's quota error
LIMIT = {"instance": "InstanceLimitExceeded", "volume": "VolumeLimitExceeded"}


def from_occi(exc: errors.OcciError, area: str) -> Ec2Error:
    """The EC2 error for a service error met by an action of `area` (instance, volume,
    image, keypair, tag, or '' for the rest)."""
    msg = exc.message
    if isinstance(exc, errors.QuotaExceeded):
        return Ec2Error(LIMIT.get(area, "ResourceLimitExceeded"), msg)
    if isinstance(exc, errors.NoCapacity):
        what = "Volume" if area == "volume" else "Instance"
        return Ec2Error(f"Insufficient{what}Capacity", msg, 500)
    if isinstance(exc, errors.Forbidden):
        return Ec2Error("UnauthorizedOperation", msg, 403)
    if isinstance(exc, errors.NotFound):
        return Ec2Error(NOT_FOUND.get(area, "InvalidParameterValue"), msg)
    if isinstance(exc, errors.Conflict):
        if exc.code == "state_conflict" or "state" in exc.code:
            return Ec2Error(STATE.get(area, "IncorrectState"), msg)
        return Ec2Error("InvalidParameterValue", msg)
    if isinstance(exc, errors.PayloadTooLarge):
        return Ec2Error("InvalidParameterValue", msg)
    if isinstance(exc, (errors.BadRequest, errors.PreconditionFailed)):
        return Ec2Error("InvalidParameterValue", msg)
    if isinstance(exc, errors.TooManyRequests):
        return Ec2Error("RequestLimitExceeded", msg, 503)
    if isinstance(exc, errors.ServiceUnavailable):
        return Ec2Error("Unavailable", msg, 503)
    if isinstance(exc, errors.BackendError):
        return Ec2Error("InternalError", msg, 500)
    return Ec2Error("InternalError", "the server failed to handle this request", 500)

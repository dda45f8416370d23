"""The xapi errors the test server answers, as the XenAPI reference names them: each travels as
`{'Status': 'Failure', 'ErrorDescription': [code, param, ...]}`."""

from __future__ import annotations

SESSION_AUTHENTICATION_FAILED = "SESSION_AUTHENTICATION_FAILED"  # [user, message]
SESSION_INVALID = "SESSION_INVALID"  # [session]
HANDLE_INVALID = "HANDLE_INVALID"  # [class, handle]
UUID_INVALID = "UUID_INVALID"  # [class, uuid]
MESSAGE_METHOD_UNKNOWN = "MESSAGE_METHOD_UNKNOWN"  # [method]
MESSAGE_PARAMETER_COUNT_MISMATCH = "MESSAGE_PARAMETER_COUNT_MISMATCH"  # [method, expected, got]
FIELD_TYPE_ERROR = "FIELD_TYPE_ERROR"  # [field]
MAP_DUPLICATE_KEY = "MAP_DUPLICATE_KEY"  # [class, field, ref, key]
VM_BAD_POWER_STATE = "VM_BAD_POWER_STATE"  # [vm, expected, actual]
VM_IS_TEMPLATE = "VM_IS_TEMPLATE"  # [vm]
VM_MISSING_PV_DRIVERS = "VM_MISSING_PV_DRIVERS"  # [vm]
MEMORY_CONSTRAINT_VIOLATION = "MEMORY_CONSTRAINT_VIOLATION"  # [constraint]
VALUE_NOT_SUPPORTED = "VALUE_NOT_SUPPORTED"  # [field, value, reason]
HOST_DISABLED = "HOST_DISABLED"  # [host]
HOST_IS_SLAVE = "HOST_IS_SLAVE"  # [master address]
HOST_NOT_ENOUGH_FREE_MEMORY = "HOST_NOT_ENOUGH_FREE_MEMORY"  # [needed, available]
NO_HOSTS_AVAILABLE = "NO_HOSTS_AVAILABLE"  # []
DEVICE_ALREADY_ATTACHED = "DEVICE_ALREADY_ATTACHED"  # [device]
DEVICE_ALREADY_DETACHED = "DEVICE_ALREADY_DETACHED"  # [device]
DEVICE_ALREADY_EXISTS = "DEVICE_ALREADY_EXISTS"  # [device]
VDI_IN_USE = "VDI_IN_USE"  # [vdi, operation]
NETWORK_CONTAINS_VIF = "NETWORK_CONTAINS_VIF"  # [vifs]
OPERATION_NOT_ALLOWED = "OPERATION_NOT_ALLOWED"  # [reason]
EVENTS_LOST = "EVENTS_LOST"  # []
EVENT_FROM_TOKEN_PARSE_FAILURE = "EVENT_FROM_TOKEN_PARSE_FAILURE"  # [token]
INTERNAL_ERROR = "INTERNAL_ERROR"  # [message]


class XapiError(Exception):
    """A failure answered to the client: the error code and its parameters (all strings)."""

    def __init__(self, code: str, *params: object):
        super().__init__(code, *params)
        self.code = code
        self.params = [str(p) for p in params]

    @property
    def description(self) -> list[str]:
        return [self.code, *self.params]

"""A protocol-level xapi (XenServer / XCP-ng management API) server for the tests.

No XenServer or XCP-ng can run here and no xapi simulator is published, so the XenServer
backend's tests talk to this one through the real XenAPI SDK over HTTP. It follows the published
XenAPI reference (https://xapi-project.github.io/xen-api/, the classes, fields and errors of
xapi-project/xen-api's ocaml/idl datamodel):

- XML-RPC over HTTP: `session.login_with_password(user, password, version, originator)`
  returns an `OpaqueRef:<uuid>` session; every other call is `Class.message(session, ...)`;
  each reply is `{'Status': 'Success', 'Value': v}` or `{'Status': 'Failure',
  'ErrorDescription': [code, param, ...]}`; integers (64-bit in xapi) travel as strings;
- errors as xapi names them (tests/xapi/errors.py): SESSION_INVALID (the SDK logs in again),
  HANDLE_INVALID, UUID_INVALID, MESSAGE_METHOD_UNKNOWN, MESSAGE_PARAMETER_COUNT_MISMATCH,
  VM_BAD_POWER_STATE [vm, expected, actual], VM_IS_TEMPLATE, VM_MISSING_PV_DRIVERS,
  MEMORY_CONSTRAINT_VIOLATION, HOST_DISABLED, DEVICE_ALREADY_ATTACHED, VDI_IN_USE, ...;
- the VM power-state machine (Halted, Running, Paused, Suspended; power.py), VM.clone and
  VM.provision of templates (other_config:disks), snapshots, the size setters and their
  constraints (vm.py), VDI / VBD / VIF / network / host messages (devices.py), the generic
  get_record / get_all_records / get_by_uuid / get_by_name_label / get_<field> / set_<field> /
  add_to_ / remove_from_ messages (store.py);
- `Async.Class.message` returning a task whose status, result and error_info are polled, and
  `event.from(classes, token, timeout)` with tokens (events.py).

The pool (pool.py) holds two hosts of different sizes, a shared SR, a network and templates;
`start_member` serves a member's address, whose logins answer HOST_IS_SLAVE [master address].
Run it on its own with `python -m tests.xapi --port 8440` (it prints its URL).
"""

from tests.xapi.server import Xapi, XapiHTTPServer, start, start_member

__all__ = ["Xapi", "XapiHTTPServer", "start", "start_member"]

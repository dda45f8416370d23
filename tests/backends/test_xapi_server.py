"""The test xapi server (tests/xapi) speaks as xapi does, driven through the real XenAPI SDK and
through plain XML-RPC: the reply structs and their integers as strings, sessions (and the SDK
logging in again after SESSION_INVALID), xapi's errors, the VM power-state machine, Async tasks,
event.from with tokens, and `python -m tests.xapi` on its own."""

from __future__ import annotations

import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator

import pytest
import XenAPI

from tests.live import ROOT
from tests.xapi import XapiHTTPServer, start

USER, PASSWORD = "root", "xapi-test"


@pytest.fixture(scope="module")
def server() -> Iterator[XapiHTTPServer]:
    srv, _ = start(user=USER, password=PASSWORD, task_delay=0.2)
    yield srv
    srv.shutdown()
    srv.server_close()


def login(url: str) -> XenAPI.Session:
    session = XenAPI.Session(url)
    session.xenapi.login_with_password(USER, PASSWORD, "2.21", "tests")
    return session


@pytest.fixture
def x(server):
    session = login(server.url)
    yield session.xenapi
    session.xenapi.session.logout()


def failure(call, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as caught:
        call(*args)
    return caught.value.details


def new_vm(x, template: str = "Debian Bookworm 12", name: str = "vm") -> str:
    vm = x.VM.clone(x.VM.get_by_name_label(template)[0], name)
    x.VM.provision(vm)
    x.VM.set_is_a_template(vm, False)
    return vm


def wait_task(x, task: str) -> str:
    for _ in range(200):
        status = x.task.get_status(task)
        if status != "pending":
            return status
        time.sleep(0.02)
    raise AssertionError("the task never ended")


# ---------------------------------------------------------------------------- the wire
def test_replies_are_status_structs_with_integers_as_strings(server):
    proxy = xmlrpc.client.ServerProxy(server.url)
    reply = proxy.session.login_with_password(USER, PASSWORD, "2.21", "tests")
    assert reply["Status"] == "Success" and reply["Value"].startswith("OpaqueRef:")
    session = reply["Value"]
    hosts = proxy.host.get_all_records(session)["Value"]
    assert len(hosts) == 2
    host = next(iter(hosts.values()))
    assert isinstance(host["API_version_major"], str) and host["enabled"] is True
    metrics = proxy.host_metrics.get_record(session, host["metrics"])["Value"]
    assert int(metrics["memory_total"]) >= 32 << 30  # beyond 32 bits: a string on the wire
    assert proxy.VM.get_all(session)["Status"] == "Success"
    assert proxy.VM.get_all("OpaqueRef:not-a-session") == {
        "Status": "Failure",
        "ErrorDescription": ["SESSION_INVALID", "OpaqueRef:not-a-session"],
    }
    assert proxy.VM.levitate(session)["ErrorDescription"] == [
        "MESSAGE_METHOD_UNKNOWN",
        "VM.levitate",
    ]
    assert proxy.VM.get_record(session)["ErrorDescription"] == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "VM.get_record",
        "1",
        "0",
    ]


def test_wrong_credentials_are_refused(server):
    session = XenAPI.Session(server.url)
    details = failure(session.xenapi.login_with_password, USER, "wrong", "2.21", "tests")
    assert details[:2] == ["SESSION_AUTHENTICATION_FAILED", USER]


def test_the_sdk_logs_in_again_after_session_invalid(server, x):
    before = len(server.xapi.sessions)
    server.xapi.expire_sessions()
    assert len(x.pool.get_all()) == 1  # SESSION_INVALID, a new login, the call again
    assert len(server.xapi.sessions) == 1 and before >= 1


def test_bad_handles_and_uuids(x):
    assert failure(x.VM.get_record, "OpaqueRef:nothing") == [
        "HANDLE_INVALID",
        "VM",
        "OpaqueRef:nothing",
    ]
    assert failure(x.VM.get_by_uuid, "no-such-uuid") == ["UUID_INVALID", "VM", "no-such-uuid"]
    vm = new_vm(x)
    assert x.VM.get_by_uuid(x.VM.get_uuid(vm)) == vm
    x.VM.add_to_other_config(vm, "k", "v")
    assert failure(x.VM.add_to_other_config, vm, "k", "w")[0] == "MAP_DUPLICATE_KEY"
    x.VM.remove_from_other_config(vm, "k")
    assert "k" not in x.VM.get_other_config(vm)
    x.VM.destroy(vm)


# ---------------------------------------------------------------------------- VMs
def test_templates_clone_and_provision_into_vms_with_disks(x):
    template = x.VM.get_by_name_label("Debian Bookworm 12")[0]
    assert x.VM.get_is_a_template(template)
    vm = x.VM.clone(template, "fresh")
    assert x.VM.get_is_a_template(vm)  # a clone of a template is a template
    assert failure(x.VM.start, vm, False, False) == ["VM_IS_TEMPLATE", vm]
    x.VM.provision(vm)
    x.VM.set_is_a_template(vm, False)
    (vbd,) = x.VM.get_VBDs(vm)
    vdi = x.VBD.get_VDI(vbd)
    assert x.VDI.get_virtual_size(vdi) == str(10 << 30)
    assert "disks" not in x.VM.get_other_config(vm)
    x.VM.destroy(vm)
    assert x.VDI.get_record(vdi)["VBDs"] == []  # VM.destroy leaves the disks
    x.VDI.destroy(vdi)


def test_the_power_state_machine(x):
    vm = new_vm(x)
    assert x.VM.get_power_state(vm) == "Halted"
    assert failure(x.VM.clean_shutdown, vm) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    x.VM.start(vm, False, False)
    record = x.VM.get_record(vm)
    assert record["power_state"] == "Running" and record["resident_on"] in x.host.get_all()
    assert vm in x.host.get_resident_VMs(record["resident_on"])
    assert failure(x.VM.start, vm, False, False) == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    assert failure(x.VM.destroy, vm)[0] == "VM_BAD_POWER_STATE"
    x.VM.pause(vm)
    assert x.VM.get_power_state(vm) == "Paused"
    x.VM.unpause(vm)
    x.VM.suspend(vm)
    assert x.VM.get_power_state(vm) == "Suspended"
    assert x.VM.get_resident_on(vm) == "OpaqueRef:NULL"
    x.VM.resume(vm, False, False)
    x.VM.clean_reboot(vm)
    x.VM.hard_reboot(vm)
    x.VM.clean_shutdown(vm)
    assert x.VM.get_power_state(vm) == "Halted"
    x.VM.destroy(vm)
    assert failure(x.VM.get_record, vm)[0] == "HANDLE_INVALID"


def test_clean_operations_need_pv_drivers(x):
    vm = new_vm(x, "Other install media")
    x.VM.start(vm, False, False)
    assert failure(x.VM.clean_shutdown, vm) == ["VM_MISSING_PV_DRIVERS", vm]
    x.VM.hard_shutdown(vm)
    x.VM.destroy(vm)


def test_size_setters_keep_xapis_constraints(x):
    vm = new_vm(x)
    x.VM.set_VCPUs_max(vm, "4")
    x.VM.set_VCPUs_at_startup(vm, "2")
    assert failure(x.VM.set_VCPUs_at_startup, vm, "8")[0] == "VALUE_NOT_SUPPORTED"
    gib = 1 << 30
    args = (str(gib), str(2 * gib), str(3 * gib), str(2 * gib))  # dynamic_min > static_max
    assert failure(x.VM.set_memory_limits, vm, *args)[0] == "MEMORY_CONSTRAINT_VIOLATION"
    x.VM.set_memory_limits(vm, str(gib), str(4 * gib), str(2 * gib), str(2 * gib))
    x.VM.start(vm, False, False)
    assert failure(x.VM.set_VCPUs_max, vm, "8")[:3] == ["VM_BAD_POWER_STATE", vm, "halted"]
    x.VM.set_VCPUs_number_live(vm, "4")
    x.VM.set_memory_dynamic_range(vm, str(4 * gib), str(4 * gib))
    record = x.VM.get_record(vm)
    assert (record["VCPUs_at_startup"], record["memory_dynamic_max"]) == ("4", str(4 * gib))
    x.VM.hard_shutdown(vm)
    x.VM.destroy(vm)


def test_pool_migrate_and_disabled_hosts(x):
    first, second = sorted(x.host.get_all(), key=x.host.get_name_label)
    vm = new_vm(x)
    x.VM.start_on(vm, first, False, False)
    assert x.VM.get_resident_on(vm) == first
    x.VM.pool_migrate(vm, second, {"live": "true"})
    assert x.VM.get_resident_on(vm) == second
    x.host.disable(first)
    try:
        assert failure(x.VM.pool_migrate, vm, first, {}) == ["HOST_DISABLED", first]
    finally:
        x.host.enable(first)
    x.VM.hard_shutdown(vm)
    x.VM.destroy(vm)


def test_devices_plug_only_into_running_vms(x):
    vm = new_vm(x)
    sr = x.pool.get_default_SR(x.pool.get_all()[0])
    vdi = x.VDI.create(
        {"name_label": "d", "SR": sr, "virtual_size": str(1 << 30), "type": "user",
         "sharable": False, "read_only": False, "other_config": {}}
    )  # fmt: skip
    vbd = x.VBD.create(
        {"VM": vm, "VDI": vdi, "userdevice": "1", "bootable": False, "mode": "RW",
         "type": "Disk", "empty": False, "other_config": {}}
    )  # fmt: skip
    assert failure(x.VBD.plug, vbd)[0] == "VM_BAD_POWER_STATE"
    x.VM.start(vm, False, False)
    assert x.VBD.get_currently_attached(vbd)
    assert failure(x.VBD.plug, vbd) == ["DEVICE_ALREADY_ATTACHED", vbd]
    assert failure(x.VDI.destroy, vdi) == ["VDI_IN_USE", vdi, "destroy"]
    x.VBD.unplug(vbd)
    assert failure(x.VBD.unplug, vbd) == ["DEVICE_ALREADY_DETACHED", vbd]
    x.VDI.resize(vdi, str(2 << 30))
    assert x.VDI.get_virtual_size(vdi) == str(2 << 30)
    net = x.network.create({"name_label": "n", "MTU": "1500", "other_config": {}})
    vif = x.VIF.create(
        {"device": "0", "network": net, "VM": vm, "MAC": "", "MTU": "1500", "other_config": {}}
    )
    assert len(x.VIF.get_MAC(vif)) == 17  # made by xapi when not given
    x.VIF.plug(vif)
    x.VM.hard_shutdown(vm)
    assert not x.VIF.get_currently_attached(vif)
    x.VM.destroy(vm)
    x.VDI.destroy(vdi)
    x.network.destroy(net)


# ---------------------------------------------------------------------------- tasks, events
def test_async_calls_are_tasks(x):
    vm = new_vm(x)
    task = x.Async.VM.start(vm, False, False)
    assert task.startswith("OpaqueRef:") and x.task.get_status(task) == "pending"
    assert wait_task(x, task) == "success"
    assert x.VM.get_power_state(vm) == "Running"
    again = x.Async.VM.start(vm, False, False)
    assert wait_task(x, again) == "failure"
    assert x.task.get_error_info(again) == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    clone = x.Async.VM.snapshot(vm, "snap")
    assert wait_task(x, clone) == "success"
    snapshot = x.task.get_result(clone)
    assert snapshot.startswith("<value>OpaqueRef:") and snapshot.endswith("</value>")
    for t in (task, again, clone):
        x.task.destroy(t)
    x.VM.hard_shutdown(vm)
    x.VM.destroy(x.VM.get_snapshots(vm)[0])
    x.VM.destroy(vm)


def test_event_from_hands_out_changes_after_a_token(x):
    event_from = getattr(x.event, "from")
    everything = event_from(["vm"], "", 0.0)
    names = {e["snapshot"]["name_label"] for e in everything["events"]}
    assert "Debian Bookworm 12" in names and all(e["class"] == "vm" for e in everything["events"])
    token = everything["token"]
    quiet = event_from(["vm"], token, 0.1)
    assert quiet["events"] == [] and quiet["token"] == token
    vm = new_vm(x)
    changes = event_from(["vm"], token, 5.0)
    mine = [e for e in changes["events"] if e["ref"] == vm]
    assert mine[0]["operation"] == "add"
    assert mine[-1]["snapshot"]["is_a_template"] is False
    token = changes["token"]
    x.VM.destroy(vm)
    gone = event_from(["vm/" + vm], token, 5.0)["events"]
    assert gone[-1]["operation"] == "del" and "snapshot" not in gone[-1]  # its VBD went first
    assert failure(event_from, ["vm"], "not-a-token", 0.0)[0] == "EVENT_FROM_TOKEN_PARSE_FAILURE"


# ---------------------------------------------------------------------------- on its own
def test_python_dash_m_runs_it_on_its_own_and_prints_its_url():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.xapi", "--port", "0", "--password", "secret"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        session = XenAPI.Session(url)
        session.xenapi.login_with_password(USER, "secret", "2.21", "tests")
        assert len(session.xenapi.host.get_all()) == 2
    finally:
        proc.terminate()
        proc.wait(10)

"""Reconciliation: changes made on the platform behind the server's back reach the API."""

from __future__ import annotations

import threading
import time

from sqlalchemy import update

from backends.simulator.schema import machines

ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"


def test_out_of_band_changes_are_reconciled(api):
    path = api.path_of(api.create("compute"))
    api.post(path, {"action": ACTION + "start"}, params={"action": "start"})
    gone = api.path_of(api.create("storage", {"occi.storage.size": 1}))
    sim = api.service.backend
    with sim.engine.begin() as conn:  # the guest powers itself off; an admin deletes a volume
        conn.execute(
            update(machines)
            .where(machines.c.name == "occi-" + path.rsplit("/", 1)[1])
            .values(state="inactive")
        )
        conn.execute(machines.delete().where(machines.c.name == "occi-" + gone.rsplit("/", 1)[1]))
    assert api.get(path).json["attributes"]["occi.compute.state"] == "active"
    assert api.service.reconcile() == 2
    assert api.get(path).json["attributes"]["occi.compute.state"] == "inactive"
    storage = api.get(gone).json["attributes"]
    assert storage["occi.storage.state"] == "error"
    assert "gone from the platform" in storage["occi.storage.state.message"]
    assert api.service.reconcile() == 0  # nothing left to change


def test_events_trigger_prompt_reconcile(api):
    path = api.path_of(api.create("compute", {"occi.core.title": "evented"}))
    api.post(path, {"action": ACTION + "start"}, params={"action": "start"})
    runner = api.service.runner
    # the simulator needs no periodic reconcile, so the fixture's runner has no reconcile loop:
    # give it one, as a server on a platform with events has
    runner.reconcile = api.service.reconcile
    threading.Thread(target=runner._reconcile_loop, daemon=True).start()
    entity_id = path.rsplit("/", 1)[1]
    with api.service.backend.engine.begin() as conn:
        conn.execute(
            update(machines).where(machines.c.name == "occi-" + entity_id).values(state="suspended")
        )
    runner._on_event(entity_id)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if api.get(path).json["attributes"]["occi.compute.state"] == "suspended":
            break
        time.sleep(0.05)
    assert api.get(path).json["attributes"]["occi.compute.state"] == "suspended"

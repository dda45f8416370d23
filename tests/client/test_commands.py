"""The `occi` command against a real server: every command group, names instead of URIs, and
the lifecycle of machines, volumes, networks, links and mixins, as a user drives it."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from tests.client.conftest import ClientServer, js, ok

pytestmark = pytest.mark.server


def test_discover_names_templates_images_zones_and_kinds(occi: ClientServer):
    table = ok(occi.run("discover"))
    for line in ("template  medium", "image     debian12", "zone      slow", "kind      compute"):
        assert line in table, table
    images = js(occi.run("discover", "images", "-o", "json"))
    assert {m["term"] for m in images} >= {"debian12", "ubuntu2404", "cirros"}
    assert all("os_tpl" in m["depends"][0] for m in images)
    query = js(occi.run("-o", "json", "discover"))
    assert set(query) == {"kinds", "mixins", "actions"}
    zones = yaml.safe_load(ok(occi.run("discover", "zones", "-o", "yaml")))
    assert sorted(z["term"] for z in zones) == ["broken", "default", "slow"]
    csv_lines = ok(occi.run("discover", "templates", "-o", "csv")).splitlines()
    assert csv_lines[0] == "group,term,title,location"
    assert any(line.startswith("template,small,") for line in csv_lines[1:])


def test_compute_lifecycle_with_names(occi: ClientServer, tmp_path):
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBogus me@host\n")
    cloud = tmp_path / "cloud.yaml"
    cloud.write_text("#cloud-config\npackages: [nginx]\n")
    vm = js(
        occi.run(
            "compute", "create", "--name", "web-1", "--image", "debian12", "--size", "medium",
            "--zone", "default", "--ssh-key", f"@{key}", "--user-data", f"@{cloud}",
            "--hostname", "web1", "-o", "json",
        )
    )  # fmt: skip
    attrs = vm["attributes"]
    assert attrs["occi.compute.cores"] == 2 and attrs["occi.compute.state"] == "inactive"
    assert attrs["occi.credentials.ssh.publickey"] == key.read_text().strip()
    assert base64.b64decode(attrs["occi.compute.userdata"]).decode() == cloud.read_text()
    terms = {m.rpartition("#")[2] for m in vm["mixins"]}
    assert {"debian12", "medium", "default", "ssh_key", "user_data"} <= terms

    # by title, by id, by location: the same machine
    shown = ok(occi.run("compute", "show", "web-1"))
    assert "debian12" in shown and "medium" in shown and vm["id"] in shown
    assert js(occi.run("compute", "show", vm["id"], "-o", "json"))["id"] == vm["id"]
    assert js(occi.run("compute", "show", vm["location"], "-o", "json"))["id"] == vm["id"]

    for action, state in (
        ("start", "active"),
        ("suspend", "suspended"),
        ("start", "active"),
        ("restart", "active"),
        ("stop", "inactive"),
        ("start", "active"),
    ):
        row = js(occi.run("compute", action, "web-1", "-o", "json", "--columns", "state"))
        assert row == {"state": state}, (action, row)

    active = js(occi.run("compute", "list", "--state", "active", "-o", "json", "--columns", "id"))
    assert {"id": vm["id"]} in active
    assert {"id": vm["id"]} not in js(
        occi.run("compute", "list", "--state", "inactive", "-o", "json", "--columns", "id")
    )
    resized = js(occi.run("compute", "resize", "web-1", "--size", "large", "-o", "json"))
    assert resized["attributes"]["occi.compute.cores"] == 4
    resized = js(occi.run("compute", "resize", "web-1", "--memory", "6", "-o", "json"))
    assert resized["attributes"]["occi.compute.memory"] == 6.0

    updated = js(occi.run("compute", "update", "web-1", "--title", "web-2", "-o", "json"))
    assert updated["title"] == "web-2"

    image = js(occi.run("compute", "save", "web-2", "--name", "web-golden", "-o", "json"))
    assert image["term"] == "web-golden" and image["location"] == "/mixin/os_tpl/web-golden/"
    # the new image makes new machines by name
    twin = js(occi.run("compute", "create", "--image", "web-golden", "--no-wait", "-o", "json"))
    assert image["scheme"] + "web-golden" in twin["mixins"]
    ok(occi.run("compute", "delete", twin["id"]))
    images = js(occi.run("discover", "images", "-o", "json"))
    assert image["scheme"] + image["term"] in {m["scheme"] + m["term"] for m in images}
    ok(occi.run("mixin", "delete", image["scheme"] + image["term"]))

    listed = js(occi.run("compute", "list", "-o", "json", "--columns", "id,title,state"))
    assert {"id": vm["id"], "title": "web-2", "state": "active"} in listed
    ok(occi.run("compute", "delete", "web-2"))
    gone = occi.run("compute", "show", vm["id"])
    assert gone.exit_code == 4, gone.stderr
    assert vm["id"] not in ok(occi.run("compute", "list"))


def test_storage_network_and_links(occi: ClientServer):
    net = js(
        occi.run("network", "create", "--name", "lan", "--address", "10.9.0.0/24", "-o", "json")
    )
    assert net["attributes"]["occi.network.address"] == "10.9.0.0/24"
    vol = js(occi.run("storage", "create", "--name", "data", "--size", "2", "-o", "json"))
    assert vol["attributes"]["occi.storage.size"] == 2.0
    vm = js(occi.run("compute", "create", "--name", "db", "--network", "lan", "-o", "json"))
    assert [ln["target"]["location"] for ln in vm["links"]] == [
        net["location"].removeprefix(occi.url)
    ]
    link = js(occi.run("link", "create", "--source", "db", "--storage", "data", "-o", "json"))
    assert link["kind"].endswith("#storagelink")
    links = js(occi.run("link", "list", "-o", "json", "--columns", "id,kind"))
    assert {"id": link["id"], "kind": "storagelink"} in links
    assert js(occi.run("link", "show", link["id"], "-o", "json"))["id"] == link["id"]
    ok(occi.run("link", "delete", link["id"]))
    assert occi.run("link", "show", link["id"]).exit_code == 4

    assert js(occi.run("storage", "online", "data", "-o", "json", "--columns", "state")) == {
        "state": "online"
    }
    assert js(occi.run("storage", "offline", "data", "-o", "json", "--columns", "state")) == {
        "state": "offline"
    }
    states = js(occi.run("network", "up", "lan", "-o", "json", "--columns", "state"))
    assert states == {"state": "active"}
    assert "data" in ok(occi.run("storage", "list"))
    assert "10.9.0.0/24" in ok(occi.run("network", "list"))
    renamed = occi.run("network", "update", "lan", "--title", "lan-2", "-o", "json")
    assert js(renamed)["title"] == "lan-2"
    assert occi.run("network", "update", "lan-2").exit_code == 2  # nothing to change
    ok(occi.run("network", "update", "lan-2", "--title", "lan"))
    ok(occi.run("compute", "delete", "db"))
    ok(occi.run("storage", "delete", "data"))
    ok(occi.run("network", "delete", "lan"))
    assert js(occi.run("network", "list", "-o", "json")) == []


def test_user_mixins_define_associate_and_remove(occi: ClientServer):
    made = js(
        occi.run("mixin", "create", "tier-web", "--title", "Web tier", "--applies", "compute",
                 "-o", "json")
    )  # fmt: skip
    assert made["term"] == "tier-web" and made["location"] == "/mixin/tier-web/"
    vm = js(occi.run("compute", "create", "--name", "tagged", "-o", "json"))
    ok(occi.run("mixin", "associate", "tier-web", "tagged"))
    shown = js(occi.run("compute", "show", "tagged", "-o", "json", "--columns", "mixins"))
    assert shown == {"mixins": "tier-web"}
    listed = js(occi.run("mixin", "list", "--group", "mixin", "-o", "json"))
    assert "tier-web" in {m["term"] for m in listed}
    ok(occi.run("mixin", "associate", "tier-web", vm["id"], "--remove"))
    assert js(occi.run("compute", "show", "tagged", "-o", "json", "--columns", "mixins")) == {
        "mixins": ""
    }
    ok(occi.run("mixin", "delete", "tier-web"))
    assert occi.run("mixin", "delete", "tier-web").exit_code == 2  # no such name any more
    ok(occi.run("compute", "delete", vm["id"]))


def test_every_output_format_of_a_listing(occi: ClientServer):
    small = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#small"
    vm = js(occi.run("compute", "create", "--name", "fmt", "--size", small, "-o", "json"))
    try:
        table = ok(occi.run("compute", "list"))
        header = table.splitlines()[0].split()
        assert header == ["ID", "TITLE", "STATE", "CORES", "MEMORY", "TEMPLATE", "IMAGE",
                          "ZONE", "IP"]  # fmt: skip
        assert vm["id"] in table  # never folded, however narrow
        narrow = occi.run("compute", "list", COLUMNS="60")
        assert vm["id"] in ok(narrow)  # whole
        assert max(len(line) for line in narrow.stdout.splitlines()) <= 60
        assert narrow.stdout.split()[:3] == ["ID", "TITLE", "STATE"]
        assert "template, image, zone, ip left out" in narrow.stderr

        docs = js(occi.run("compute", "list", "-o", "json"))
        assert isinstance(docs, list) and vm["id"] in [d["id"] for d in docs]
        assert all("attributes" in d and "kind" in d for d in docs)  # the server's documents
        picked = js(occi.run("compute", "list", "-o", "json", "--columns", "id,cores"))
        assert {"id": vm["id"], "cores": 1} in picked
        assert yaml.safe_load(ok(occi.run("compute", "list", "-o", "yaml"))) == docs
        csv_text = ok(occi.run("-o", "csv", "--columns", "title,template", "compute", "list"))
        assert "title,template" == csv_text.splitlines()[0]
        assert "fmt,small" in csv_text.splitlines()
        one = js(occi.run("compute", "show", "fmt", "-o", "json", "--columns", "title,zone"))
        assert one == {"title": "fmt", "zone": "default"}
        bad = occi.run("compute", "list", "--columns", "nope")
        assert bad.exit_code == 2 and "no column nope" in bad.stderr
    finally:
        ok(occi.run("compute", "delete", vm["id"]))


def test_administrators_see_hosts_clusters_zones_and_events(occi: ClientServer):
    hosts = js(occi.run("hosts", "list", "-o", "json", user="admin"))
    assert {"sim1", "sim2", "sim3", "slow1", "broken1"} <= {h["name"] for h in hosts}
    table = ok(occi.run("hosts", "list", "--cluster", "slowc", user="admin"))
    assert "slow1" in table and "sim1" not in table
    assert js(occi.run("hosts", "show", "sim1", "-o", "json", user="admin"))["cores"] == 256
    clusters = js(occi.run("clusters", "list", "--zone", "slow", "-o", "json", user="admin"))
    assert [c["name"] for c in clusters] == ["slowc"]
    assert js(occi.run("clusters", "show", "slowc", "-o", "json", user="admin"))["zone"] == "slow"
    zones = js(occi.run("zones", "list", "-o", "json", "--columns", "name", user="admin"))
    assert {"name": "slow"} in zones
    assert "slow" in ok(occi.run("zones", "show", "slow", user="admin"))

    # machines move away from a host in maintenance; with nowhere to go they stay (exit 1)
    vm = js(occi.run("compute", "create", "--name", "mover", "--start", "-o", "json"))
    try:
        for host in ("sim1", "sim2"):  # placement is first-fit: the machine ends on sim3
            doc = js(occi.run("hosts", "maintenance", host, "-o", "json", user="admin"))
            assert (doc["admin_state"], doc["vms"]) == ("maintenance", 0), doc
        stuck = occi.run("hosts", "maintenance", "sim3", "-o", "json", user="admin")
        assert stuck.exit_code == 1, stuck.stderr
        assert json.loads(stuck.stdout)["admin_state"] == "error-in-maintenance"
        assert "sim3:" in stuck.stderr and "no other host" in stuck.stderr
    finally:
        for host in ("sim1", "sim2", "sim3"):
            ok(occi.run("hosts", "maintenance", host, "--cancel", user="admin"))
    disabled = js(occi.run("hosts", "disable", "slow1", "-o", "json", user="admin"))
    assert disabled["admin_state"] == "disabled"
    assert js(occi.run("hosts", "enable", "slow1", "-o", "json", user="admin"))["admin_state"] == (
        "enabled"
    )
    doc = js(occi.run("clusters", "maintenance", "slowc", "-o", "json", user="admin"))
    assert [(h["name"], h["admin_state"]) for h in doc] == [("slow1", "maintenance")]
    ok(occi.run("hosts", "cancel-maintenance", "slow1", user="admin"))
    assert js(occi.run("compute", "show", "mover", "-o", "json", "--columns", "state")) == {
        "state": "active"
    }
    ok(occi.run("compute", "delete", vm["id"]))

    events = js(occi.run("events", "--user", "demo", "--limit", "50", "-o", "json", user="admin"))
    operations = {e["operation"] for e in events}
    assert {"create compute", "delete", "action start"} <= operations, operations
    assert all(e["user"] == "demo" for e in events)
    table = ok(occi.run("events", "--since", "1h", "--limit", "5", user="admin"))
    assert table.splitlines()[0].split()[:3] == ["AT", "USER", "PROJECT_NAME"]
    bad = occi.run("events", "--since", "yesterday", user="admin")
    assert bad.exit_code == 1 and "neither an age" in bad.stderr

    refused = occi.run("hosts", "list")  # demo is a member: 403
    assert refused.exit_code == 5 and "only administrators" in refused.stderr
    assert occi.run("events").exit_code == 5
    assert occi.run("hosts", "show", "nope", user="admin").exit_code == 4
    assert occi.run("clusters", "maintenance", "nope", user="admin").exit_code == 4

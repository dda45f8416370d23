"""`--wait` on a slow platform, and each exit code of the `occi` command (0 done, 1 failed with
the entity's message, 2 usage, 3 timeout, 4 not found, 5 authentication)."""

from __future__ import annotations

import json

import pytest

from occi.cli import main as server_main
from tests.client.conftest import ClientServer, js, ok
from tests.test_x509 import Certificates, TlsProxy

pytestmark = pytest.mark.server


def test_wait_follows_the_state_message_until_the_state_is_reached(occi: ClientServer):
    created = occi.run("compute", "create", "--zone", "slow", "--name", "slow-vm", "--start",
                       "-o", "json")  # fmt: skip
    doc = js(created)
    # the progress lines (stderr, not a terminal here) show what the platform was doing
    progress = created.stderr.splitlines()
    assert "compute create: inactive (creating)" in progress, progress
    assert "compute start: inactive (start requested)" in progress, progress
    assert progress[-1] == "compute start: active (running)", progress
    assert doc["attributes"]["occi.compute.state"] == "active"
    assert doc["attributes"]["occi.compute.state.message"] == "running"

    # without waiting: the answer as the server gave it, work still under way
    stop = js(occi.run("compute", "stop", "slow-vm", "--no-wait", "-o", "json"))
    assert stop["attributes"]["occi.compute.state.message"] == "stop requested"
    # too short a timeout: exit 3, and the entity carries on
    # (on a terminal, as FORCE_COLOR makes one: a spinner beside the state and its message)
    short = occi.run("compute", "start", "slow-vm", "--timeout", "0.1", FORCE_COLOR="1")
    assert short.exit_code == 3, (short.stdout, short.stderr)
    assert "\x1b[" in short.stderr and "(start requested)" in short.stderr
    assert "after 0.1 s" in short.stderr and "carries on at" in short.stderr
    # the delete waits behind the start still under way, until the machine is gone
    deleted = occi.run("compute", "delete", "slow-vm")
    assert deleted.exit_code == 0 and "deleted" in deleted.stderr
    assert occi.run("compute", "show", doc["id"]).exit_code == 4


def test_exit_code_1_prints_the_entity_error_message(occi: ClientServer):
    failed = occi.run("compute", "create", "--zone", "broken", "--name", "doomed")
    assert failed.exit_code == 1
    assert "is in error: the simulator platform failed: simulated failure of create" in (
        failed.stderr
    )
    # the entity was kept, in error, so it can be looked at and deleted
    row = js(occi.run("compute", "show", "doomed", "-o", "json", "--columns", "state,zone"))
    assert row == {"state": "error", "zone": "broken"}
    ok(occi.run("compute", "delete", "doomed"))
    # a refusal of the server is a failure too, with its message
    conflict = occi.run("compute", "create", "--name", "twice", "-o", "json")
    vm = js(conflict)
    refused = occi.run("compute", "stop", "twice")  # an inactive machine cannot stop
    assert refused.exit_code == 1 and refused.stderr.startswith("occi: 409 ")
    ok(occi.run("compute", "delete", vm["id"]))


def test_exit_code_2_for_usage_and_unknown_names(occi: ClientServer):
    unknown = occi.run("compute", "create", "--image", "windows95")
    assert unknown.exit_code == 2
    assert "no image 'windows95'" in unknown.stderr and "debian12" in unknown.stderr
    assert occi.run("compute", "create", "--zone", "mars").exit_code == 2
    assert occi.run("compute", "frobnicate").exit_code == 2
    assert occi.run("compute", "create", "--cores", "many").exit_code == 2
    assert occi.run("-o", "xml", "compute", "list").exit_code == 2
    assert occi.run("compute", "create", "--user-data", "@/no/such/file").exit_code == 2
    assert occi.run("compute", "resize", "x").exit_code == 2  # nothing to change
    assert occi.run("--url", "ftp://nowhere", "compute", "list").exit_code == 2


def test_exit_codes_4_and_5(occi: ClientServer):
    assert occi.run("compute", "show", "00000000-0000-0000-0000-000000000000").exit_code == 4
    assert occi.run("storage", "delete", "no-such-volume").exit_code == 4
    wrong = occi.run("compute", "list", OCCI_PASSWORD="wrong")
    assert wrong.exit_code == 5 and "401" in wrong.stderr
    assert occi.run("compute", "list", OCCI_USER=None, OCCI_PASSWORD=None).exit_code == 5
    # a project the user is not in
    assert occi.run("--project", "default", "compute", "list").exit_code == 5
    # the password from standard input
    typed = occi.run("--password-stdin", "compute", "list", stdin=occi.demo[1] + "\n",
                     OCCI_PASSWORD=None)  # fmt: skip
    assert typed.exit_code == 0, typed.stderr
    mistyped = occi.run("--password-stdin", "compute", "list", stdin="nope\n")
    assert mistyped.exit_code == 5
    unreachable = occi.run("--url", "http://127.0.0.1:9", "compute", "list")
    assert unreachable.exit_code == 1 and "cannot reach" in unreachable.stderr


def test_api_tokens_authenticate(occi: ClientServer, capsys):
    assert server_main(["tokens", "create", "demo", "--database-url", occi.database_url]) == 0
    token = capsys.readouterr().out.split()[-1]
    assert token.startswith("occi_")
    env = {"OCCI_USER": None, "OCCI_PASSWORD": None}
    assert js(occi.run("compute", "list", "-o", "json", OCCI_TOKEN=token, **env)) == json.loads(
        ok(occi.run("compute", "list", "-o", "json"))
    )
    assert occi.run("--token", token, "compute", "list", **env).exit_code == 0
    assert occi.run("--token", "occi_x_y", "compute", "list", **env).exit_code == 5


def test_openid_connect_access_tokens_authenticate(occi: ClientServer):
    entitled = ["urn:mace:egi.eu:group:demo:role=member#aai.egi.eu"]
    token = occi.issuer.token(preferred_username="olga", eduperson_entitlement=entitled)
    env = {"OCCI_USER": None, "OCCI_PASSWORD": None}
    assert occi.run("--oidc-token", token, "compute", "list", **env).exit_code == 0
    made = js(occi.run("compute", "create", "--name", "by-olga", "-o", "json",
                       OCCI_OIDC_TOKEN=token, **env))  # fmt: skip
    # the same project as demo's
    assert js(occi.run("compute", "show", made["id"], "-o", "json"))["title"] == "by-olga"
    ok(occi.run("compute", "delete", made["id"]))
    other = occi.issuer.token(preferred_username="olga", aud="another-service")
    assert occi.run("--oidc-token", other, "compute", "list", **env).exit_code == 5


def test_client_certificates_authenticate_through_a_tls_proxy(occi: ClientServer, tmp_path, capsys):
    certs = Certificates(tmp_path)
    dn = certs.subject("carol").rfc4514_string()
    db = ["--database-url", occi.database_url]
    assert server_main(["users", "create", "carol-x509", "--x509-dn", dn, *db]) == 0
    assert server_main(["roles", "grant", "carol-x509", "demo", "member", *db]) == 0
    capsys.readouterr()
    proxy = TlsProxy(tmp_path, certs, occi.port)
    try:
        cert, key = certs.carol
        env = {"OCCI_URL": proxy.url, "OCCI_USER": None, "OCCI_PASSWORD": None}
        tls = ("--cert", cert, "--key", key, "--ca", str(certs.server_ca))
        mine = js(occi.run(*tls, "compute", "create", "--name", "by-carol", "-o", "json", **env))
        assert js(occi.run("compute", "show", "by-carol", "-o", "json"))["id"] == mine["id"]
        # the same from the environment
        assert occi.run("compute", "list", OCCI_CLIENT_CERT=cert, OCCI_CLIENT_KEY=key,
                        OCCI_CA_BUNDLE=str(certs.server_ca), **env).exit_code == 0  # fmt: skip
        # a server certificate not verified: nothing sent
        unverified = occi.run("--cert", cert, "--key", key, "compute", "list", **env)
        assert unverified.exit_code == 1 and "CERTIFICATE_VERIFY_FAILED" in unverified.stderr
        assert occi.run("--insecure", "--cert", cert, "--key", key, "compute", "list",
                        **env).exit_code == 0  # fmt: skip
        # a certificate of a subject no user has
        mallory = ("--cert", certs.mallory[0], "--key", certs.mallory[1])
        refused = occi.run(*mallory, "--ca", str(certs.server_ca), "compute", "list", **env)
        assert refused.exit_code == 5
        missing = occi.run("--cert", str(tmp_path / "none.pem"), "compute", "list", **env)
        assert missing.exit_code == 2
        ok(occi.run("compute", "delete", mine["id"]))
    finally:
        proxy.stop()


def test_text_plain_speaks_the_same_as_json(occi: ClientServer):
    text = ("--media", "text/plain")
    vm = js(occi.run(*text, "compute", "create", "--name", "plain", "--image", "cirros",
                     "--size", "small", "--start", "-o", "json"))  # fmt: skip
    assert vm["attributes"]["occi.compute.state"] == "active"
    assert {m.rpartition("#")[2] for m in vm["mixins"]} >= {"cirros", "small", "default"}
    as_json = js(occi.run("compute", "show", "plain", "-o", "json", "--columns", "id,state,image"))
    as_text = js(occi.run(*text, "compute", "show", "plain", "-o", "json",
                          "--columns", "id,state,image"))  # fmt: skip
    assert as_text == as_json == {"id": vm["id"], "state": "active", "image": "cirros"}
    listed = js(occi.run(*text, "compute", "list", "-o", "json", "--columns", "id"))
    assert {"id": vm["id"]} in listed
    images = js(occi.run(*text, "discover", "images", "-o", "json"))
    assert "debian12" in {m["term"] for m in images}
    stopped = js(occi.run(*text, "compute", "stop", "plain", "-o", "json", "--columns", "state"))
    assert stopped == {"state": "inactive"}
    missing = occi.run(*text, "compute", "show", "/compute/nothing-here")
    assert missing.exit_code == 4 and "nothing exists" in missing.stderr
    ok(occi.run(*text, "compute", "delete", "plain"))
    assert occi.run("compute", "show", vm["id"]).exit_code == 4

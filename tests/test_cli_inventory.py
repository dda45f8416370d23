"""`occi-server zones|clusters|hosts`: a small cloud built, listed, changed and taken apart from
the command line (main() with argv, and a real process for exit codes and a wrong key), on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from occi.cli import main
from occi.store.inventory_sql import clusters

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(db_url, monkeypatch, capsys):
    monkeypatch.setenv("OCCI_SECRET_KEY", "the key of the cli tests")
    monkeypatch.delenv("OCCI_CONFIG", raising=False)
    assert main(["migrate", "--database-url", db_url]) == 0
    capsys.readouterr()

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--database-url", db_url])
        out, err = capsys.readouterr()
        return code, out, err

    run.url = db_url  # type: ignore[attr-defined]
    return run


def test_a_small_cloud_from_the_command_line(cli):
    assert cli("zones", "create", "z1")[0] == 0
    code, out, err = cli(
        "clusters", "create", "c1", "--zone", "z1", "--backend", "libvirt",
        "--cpu-overcommit", "2", "--memory-overcommit", "1",
        "--setting", "libvirt_uri=qemu+ssh://h1/system", "--setting", "libvirt_password=pw-42",
        "--tag", "ssd",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("cluster c1 created")
    code, out, _ = cli("clusters", "create", "c2", "--zone", "z1", "--backend", "simulator")
    assert code == 0
    code, out, err = cli(
        "hosts", "create", "s1", "--cluster", "c2", "--cores", "16", "--memory-gb", "64"
    )
    assert code == 0, err
    code, out, _ = cli("hosts", "list", "--cluster", "c2")
    header, line = out.splitlines()
    assert header.split()[:3] == ["HOST", "CLUSTER", "CORES"]
    assert line.split() == ["s1", "c2", "16", "64", "0/16x1", "0/64x1", "up", "enabled", "0"]

    code, out, _ = cli("clusters", "show", "c1", "--json")
    shown = json.loads(out)
    assert shown["settings"] == {
        "libvirt_password": "********",
        "libvirt_uri": "qemu+ssh://h1/system",
    }
    assert (shown["backend"], shown["cpu_overcommit"], shown["tags"]) == ("libvirt", 2.0, ["ssd"])
    code, out, _ = cli("clusters", "show", "c1")
    assert "pw-42" not in out and "libvirt_password=********" in out
    engine = sa.create_engine(cli.url)
    with engine.connect() as conn:
        raw = conn.execute(
            sa.select(clusters.c.settings).where(clusters.c.name == "c1")
        ).scalar_one()
    engine.dispose()
    assert "pw-42" not in raw and "qemu+ssh" not in raw

    code, out, _ = cli(
        "clusters",
        "update",
        "c1",
        "--setting",
        "libvirt_password=",
        "--cpu-overcommit",
        "4",
        "--json",
    )
    assert json.loads(out)["settings"] == {"libvirt_uri": "qemu+ssh://h1/system"}
    assert json.loads(out)["cpu_overcommit"] == 4.0
    code, out, _ = cli("hosts", "update", "s1", "--cores", "8", "--tag", "gpu", "--json")
    assert (json.loads(out)["cores"], json.loads(out)["tags"]) == (8, ["gpu"])

    assert cli("hosts", "disable", "s1")[1] == "host s1: admin state disabled\n"
    assert cli("hosts", "maintenance", "s1")[1] == "host s1: admin state maintenance\n"
    code, _, err = cli("hosts", "enable", "s1")
    assert code == 1 and "cancel-maintenance" in err
    assert cli("hosts", "cancel-maintenance", "s1")[1] == "host s1: admin state enabled\n"

    code, _, err = cli("zones", "delete", "z1")
    assert code == 1 and "c1" in err and "c2" in err
    code, _, err = cli("clusters", "delete", "c2")
    assert code == 1 and "s1" in err
    assert cli("hosts", "delete", "s1")[0] == 0
    assert cli("clusters", "delete", "c2")[0] == 0
    assert cli("clusters", "delete", "c1")[0] == 0
    assert cli("zones", "delete", "z1") == (0, "zone z1 deleted\n", "")
    code, out, _ = cli("zones", "list", "--json")
    assert json.loads(out) == []


def test_refusals_are_one_line_and_exit_1(cli):
    cli("zones", "create", "z1")
    for argv, words in (
        (("zones", "create", "z1"), "exists already"),
        (("zones", "create", "bad name"), "invalid zone name"),
        (("clusters", "create", "c", "--zone", "z1"), "--backend"),
        (("clusters", "create", "c", "--zone", "z1", "--backend", "nope"), "unknown backend"),
        (
            (
                "clusters",
                "create",
                "c",
                "--zone",
                "z1",
                "--backend",
                "simulator",
                "--cpu-overcommit",
                "0",
            ),
            "above 0",
        ),
        (
            ("clusters", "create", "c", "--zone", "z1", "--backend", "simulator", "--setting", "x"),
            "KEY=VALUE",
        ),
        (
            ("hosts", "create", "h", "--cluster", "nope", "--cores", "1", "--memory-gb", "1"),
            "no cluster",
        ),
        (("hosts", "show", "nope"), "no host is named nope"),
    ):
        code, out, err = cli(*argv)
        assert code == 1, argv
        assert words in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_exit_codes_are_in_the_help_and_a_wrong_key_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
    env.update(PYTHONPATH=str(ROOT), OCCI_DATABASE_URL=f"sqlite:///{tmp_path}/o.db")

    def run(*argv: str, key: str = "first key of sixteen+") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "occi.cli", *argv],
            env={**env, "OCCI_SECRET_KEY": key},
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )

    help_text = run("hosts", "--help").stdout
    assert "exit codes: 0 done; 1 refused" in " ".join(help_text.split())
    assert run("migrate").returncode == 0
    assert run("zones", "create", "z1").returncode == 0
    made = run("clusters", "create", "c1", "--zone", "z1", "--backend", "simulator")
    assert made.returncode == 0, made.stderr
    wrong = run("clusters", "list", key="another key of sixteen+")
    assert wrong.returncode == 1
    assert "cannot be decrypted" in wrong.stderr and "Traceback" not in wrong.stderr
    assert run("zones", "list").returncode == 0
    assert run("hosts", "frobnicate", "x").returncode == 2


@pytest.mark.server
def test_a_served_cloud_shows_its_hosts_to_the_admin_only(tmp_path):
    """`occi-server serve` makes the shorthand before forking; the command line adds to it while
    the server runs, and the server's admin API shows what it made."""
    import requests

    from tests.live import LiveServer

    srv = LiveServer(tmp_path, auth="basic,token", simulator_hosts="a:8:16,b:4:8")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCCI_")}
        env.update(PYTHONPATH=str(ROOT), OCCI_DATABASE_URL=f"sqlite:///{tmp_path}/occi.db")
        for argv in (
            ("zones", "create", "z1"),
            ("clusters", "create", "c1", "--zone", "z1", "--backend", "simulator"),
            ("hosts", "create", "s1", "--cluster", "c1", "--cores", "16", "--memory-gb", "64"),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "occi.cli", *argv],
                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        creds = dict(
            line.split("=", 1)
            for line in (tmp_path / "occi-credentials").read_text().splitlines()
            if line and not line.startswith("#")
        )
        admin = (creds["OCCI_ADMIN_USER"], creds["OCCI_ADMIN_PASSWORD"])
        demo = (creds["OCCI_DEMO_USER"], creds["OCCI_DEMO_PASSWORD"])
        r = requests.get(srv.url + "/-/admin/hosts", auth=admin, timeout=10)
        assert r.status_code == 200, r.text
        assert [(h["name"], h["cluster"], h["cores"]) for h in r.json()["hosts"]] == [
            ("a", "default", 8),
            ("b", "default", 4),
            ("s1", "c1", 16),
        ]
        r = requests.get(srv.url + "/-/admin/hosts", auth=demo, timeout=10)
        assert r.status_code == 403 and "s1" not in r.text
        assert requests.get(srv.url + "/-/admin/hosts", timeout=10).status_code == 401
    finally:
        srv.stop()

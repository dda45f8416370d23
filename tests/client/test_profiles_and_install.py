"""Where the `occi` command takes its settings from (defaults < profile file < OCCI_* variables <
options), shell completion, and the installed console script run as a user runs it, which
never loads the server's modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from occi.client import config
from occi.settings import CLIENT_VARIABLES, Settings
from tests.client.conftest import ClientServer, environ_without_client_variables, js, ok

OCCI = Path(sys.executable).with_name("occi")


def settings(occi: ClientServer, *args: str, **env: str | None) -> dict[str, tuple[str, str]]:
    """`occi profile show` as {key: (value, source)}."""
    rows = js(occi.run(*args, "profile", "show", "-o", "json", **env))
    return {r["key"]: (r["value"], r["source"]) for r in rows}


def write_config(path: Path, server: ClientServer) -> None:
    user, password = server.demo
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""profile = "lab"

[profiles.lab]
url = "{server.url}"
user = "{user}"
password = "{password}"
project = "demo"
http_timeout = 20

[profiles.other]
url = "http://other.example.org:8080/"
token = "occi_abc_def"
media = "text"
"""
    )


@pytest.mark.server
def test_each_level_overrides_the_one_before(occi: ClientServer, tmp_path):
    path = tmp_path / "xdg" / "occi" / "config.toml"
    write_config(path, occi)
    # the file in $XDG_CONFIG_HOME/occi, its default profile `lab`
    base = {config.CONFIG_ENV: None, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    got = settings(occi, OCCI_URL=None, OCCI_USER=None, OCCI_PASSWORD=None, **base)
    source = f"{path} [profiles.lab]"
    assert got["profile"][0] == "lab"
    assert got["url"] == (occi.url, source)
    assert got["project"] == ("demo", source)
    assert got["http_timeout"] == ("20.0", source)
    assert got["password"] == ("********", source)  # never shown
    assert got["auth"] == ("basic", "default")
    assert got["media"] == ("application/occi+json", "default")
    # the file's credentials work
    assert occi.run("compute", "list", OCCI_USER=None, OCCI_PASSWORD=None, **base).exit_code == 0

    # environment over the file, options over the environment
    got = settings(occi, OCCI_PROJECT="env-project", OCCI_MEDIA="text/plain", **base)
    assert got["project"] == ("env-project", "OCCI_PROJECT")
    assert got["media"] == ("text/plain", "OCCI_MEDIA")
    assert got["url"] == (occi.url, "OCCI_URL")
    got = settings(occi, "--project", "opt-project", "--media", "json", OCCI_PROJECT="x", **base)
    assert got["project"] == ("opt-project", "--project")
    assert got["media"] == ("application/occi+json", "--media")

    # another profile by name: option, then variable
    other = {"OCCI_URL": None, "OCCI_USER": None, "OCCI_PASSWORD": None, **base}
    got = settings(occi, "--profile", "other", **other)
    assert got["url"] == ("http://other.example.org:8080", f"{path} [profiles.other]")
    assert got["auth"][0] == "token" and got["media"][0] == "text/plain"
    assert settings(occi, OCCI_PROFILE="other", **other)["profile"][0] == "other"
    names = js(occi.run("profile", "list", "-o", "json", **base))
    assert [n["profile"] for n in names] == ["lab", "other"]

    # mistakes are usage errors, each named
    missing = occi.run("--profile", "nope", "compute", "list", **base)
    assert missing.exit_code == 2 and "no profile 'nope'" in missing.stderr
    path.write_text("[profiles.lab]\nurl = 'http://x'\ncolour = 'blue'\n")
    unknown = occi.run("compute", "list", **base)
    assert unknown.exit_code == 2 and "unknown key 'colour'" in unknown.stderr
    path.write_text("[profiles.lab\n")
    assert occi.run("compute", "list", **base).exit_code == 2


def test_without_any_configuration_the_defaults_apply(occi: ClientServer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got = settings(occi, OCCI_URL=None, OCCI_USER=None, OCCI_PASSWORD=None)
    assert got["url"] == ("http://127.0.0.1:8080", "default")
    assert got["auth"] == ("none", "default")


@pytest.mark.server
def test_the_first_start_credentials_file_signs_in(occi: ClientServer, tmp_path, monkeypatch):
    """As the walkthroughs do: the demo password (or admin's) from the server's file."""
    anonymous = {"OCCI_USER": None, "OCCI_PASSWORD": None}
    named = {"OCCI_CREDENTIALS": str(occi.credentials), **anonymous}
    assert settings(occi, **named)["user"] == (occi.demo[0], "OCCI_CREDENTIALS")
    assert occi.run("compute", "list", **named).exit_code == 0
    assert occi.run("--user", "admin", "hosts", "list", **named).exit_code == 0
    alien = occi.run("--user", "alice", "compute", "list", **named)
    assert alien.exit_code == 2 and "no password of the user 'alice'" in alien.stderr
    # ./occi-credentials, when nothing else is given (as after `make run`)
    monkeypatch.chdir(tmp_path)
    assert occi.run("compute", "list", **anonymous).exit_code == 5
    (tmp_path / "occi-credentials").write_text(occi.credentials.read_text())
    got = settings(occi, **anonymous)
    assert got["password"] == ("********", "./occi-credentials")
    assert occi.run("compute", "list", **anonymous).exit_code == 0
    assert occi.run("--user", "admin", "hosts", "list", **anonymous).exit_code == 0
    # a password or a token given wins over the file
    assert occi.run("compute", "list", OCCI_PASSWORD="wrong", OCCI_USER=None).exit_code == 5


def test_the_server_does_not_warn_about_the_client_variables():
    env = {f"OCCI_{name.upper()}": "x" for name in CLIENT_VARIABLES}
    assert Settings.load(environ={**env, "OCCI_FROBNICATE": "1"}).unrecognised() == ["frobnicate"]
    client = {v.removeprefix("OCCI_").lower() for v in config.ENV.values()}
    client |= {"profile", "client_config"}
    assert client == CLIENT_VARIABLES


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o"), ("zsh", "#compdef occi")])
def test_completion_scripts(occi: ClientServer, shell, marker):
    script = ok(occi.run("completion", shell))
    assert marker in script and "_OCCI_COMPLETE" in script


def run_installed(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(OCCI), *args],
        env={**environ_without_client_variables(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.server
def test_the_installed_command(occi: ClientServer, tmp_path):
    assert OCCI.exists(), "the console script `occi` is installed with the package"
    helped = run_installed("--help")
    assert helped.returncode == 0
    assert "Exit codes:" in helped.stdout and "3  timeout" in helped.stdout
    user, password = occi.demo
    env = {"OCCI_URL": occi.url, "OCCI_USER": user, "OCCI_PASSWORD": password}
    listed = run_installed("compute", "list", "-o", "json", **env)
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    missing = run_installed("compute", "show", "no-such-vm", **env)
    assert (missing.returncode, missing.stdout) == (4, "")
    assert missing.stderr == "occi: no compute 'no-such-vm'\n"
    assert run_installed("compute", "list", "--bogus").returncode == 2
    # bash asks the command itself what completes a word
    completed = run_installed(
        _OCCI_COMPLETE="bash_complete", COMP_WORDS="occi comp", COMP_CWORD="1"
    )
    assert completed.returncode == 0
    assert {"plain,compute", "plain,completion"} <= set(completed.stdout.split()), completed.stdout
    completed = run_installed(
        _OCCI_COMPLETE="zsh_complete", COMP_WORDS="occi compute st", COMP_CWORD="2"
    )
    assert {"start", "stop"} <= set(completed.stdout.split()), completed.stdout
    assert "show" not in completed.stdout.split()
    # the server's images, templates and zones complete their options
    completed = run_installed(
        _OCCI_COMPLETE="bash_complete",
        COMP_WORDS="occi compute create --image deb",
        COMP_CWORD="4",
        **env,
    )
    assert completed.stdout.split() == ["plain,debian12"], completed.stdout
    completed = run_installed(
        _OCCI_COMPLETE="zsh_complete",
        COMP_WORDS=f"occi --url {occi.url} storage create --zone s",
        COMP_CWORD="6",
        OCCI_USER=user,
        OCCI_PASSWORD=password,
    )
    assert completed.stdout.split() == ["plain", "slow", "_"], completed.stdout


#: modules of the server the client must never load
SERVER_MODULES = ("occi.service", "occi.store", "occi.api", "occi.jobs", "falcon", "sqlalchemy")


def test_the_client_never_imports_the_server():
    code = (
        "import sys, occi.client.cli\n"
        "from occi.client.cli import cli\n"
        "from click.testing import CliRunner\n"
        "CliRunner().invoke(cli, ['--help'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('occi', 'falcon', "
        "'sqlalchemy')))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        env=environ_without_client_variables(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert p.returncode == 0, p.stderr
    loaded = p.stdout
    assert "occi.client.cli" in loaded
    assert not [m for m in SERVER_MODULES if f"'{m}'" in loaded or f"'{m}." in loaded], loaded

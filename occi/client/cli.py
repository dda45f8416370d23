"""The `occi` command's entry point: global options (profile, server, credentials, rendering,
output), the command groups, `profile` and `completion`. `main` is the console script."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click
from click.shell_completion import get_completion_class

from occi.client import admin, catalog, config, kinds
from occi.client.failures import help_text
from occi.client.session import OcciGroup, Session, output_options, pass_session

HELP = f"""A client of OCCI 1.2 servers: discover what a cloud offers, create and manage
virtual machines, volumes, networks and links, and (administrators) hosts and the audit log.

\b
Settings, later ones winning: defaults < a profile of $XDG_CONFIG_HOME/occi/config.toml
< OCCI_URL, OCCI_USER, OCCI_PASSWORD, OCCI_TOKEN, OCCI_PROJECT, OCCI_PROFILE, ... < options.

{help_text()}
"""
SHELLS = ("bash", "zsh")


def _option(name: str, *short: str, **kw: Any) -> Any:
    return click.option(name, *short, expose_value=False, callback=_store(name), **kw)


def _store(name: str) -> Any:
    key = name.lstrip("-").replace("-", "_")

    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            ctx.ensure_object(Session).options[key] = value

    return callback


def _password_from_stdin(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        line = sys.stdin.readline().rstrip("\r\n")
        ctx.ensure_object(Session).options["password"] = line


@click.group(cls=OcciGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@_option("--profile", metavar="NAME", help="A profile of the configuration file.")
@_option("--url", metavar="URL", help="The server, e.g. https://occi.example.org:8443.")
@_option("--user", "-u", metavar="USER", help="User name (basic authentication).")
@_option("--password", metavar="PASSWORD", help="Password (better: OCCI_PASSWORD or a profile).")
@click.option(
    "--password-stdin",
    is_flag=True,
    expose_value=False,
    callback=_password_from_stdin,
    help="Read the password from the first line of standard input.",
)
@_option("--token", metavar="TOKEN", help="An API token of the server (Bearer).")
@_option("--oidc-token", metavar="JWT", help="An OpenID Connect access token (Bearer).")
@_option("--cert", metavar="FILE", help="Client certificate (PEM) for x509 authentication.")
@_option("--key", metavar="FILE", help="Its private key, when not in --cert.")
@_option("--ca", metavar="FILE", help="CA bundle to verify the server with.")
@_option("--insecure", is_flag=True, default=None, help="Do not verify the server's certificate.")
@_option("--auth", type=click.Choice(config.AUTH_METHODS), help="Force an authentication method.")
@_option("--project", "-p", metavar="PROJECT", help="The project to act in (X-OCCI-Project).")
@_option(
    "--media",
    type=click.Choice(["application/occi+json", "text/plain", "json", "text"]),
    help="The OCCI rendering spoken (application/occi+json).",
)
@_option(
    "--credentials",
    metavar="FILE",
    help="A server's first-start credentials file (occi-credentials): the password of "
    "--user (demo by default).",
)
@_option("--http-timeout", type=click.FloatRange(0.1, 3600), help="Seconds per HTTP request.")
@click.option("-v", "--verbose", is_flag=True, help="Log each HTTP request on stderr.")
@output_options
@click.version_option(package_name="occi-server", prog_name="occi")
def cli(verbose: bool) -> None:
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="occi: %(message)s")


for command in (
    catalog.discover,
    kinds.compute,
    kinds.storage,
    kinds.network,
    kinds.link,
    catalog.mixin,
    admin.hosts,
    admin.clusters,
    admin.zones,
    admin.events,
):
    cli.add_command(command)


@cli.group()
def profile() -> None:
    """The profiles of the configuration file, and the settings in effect."""


@profile.command("show")
@output_options
@pass_session
def profile_show(session: Session) -> None:
    """The settings this invocation uses, and where each comes from (secrets masked)."""
    rows = session.profile().shown()
    rows.insert(0, {"key": "profile", "value": session.profile().name, "source": ""})
    session.output.emit(rows, ["key", "value", "source"])


@profile.command("list")
@output_options
@pass_session
def profile_list(session: Session) -> None:
    """The profiles of the configuration file."""
    path = config.config_path()
    try:
        names = config.profile_names(path)
    except config.ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    session.output.emit([{"profile": n, "file": str(path)} for n in names], ["profile", "file"])


@cli.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script: `eval "$(occi completion bash)"` in ~/.bashrc,
    or `occi completion zsh > "${fpath[1]}/_occi"`."""
    cls = get_completion_class(shell)
    assert cls is not None  # click ships both
    click.echo(cls(cli, {}, "occi", "_OCCI_COMPLETE").source())


def main() -> None:
    try:
        cli.main(prog_name="occi")
    except BrokenPipeError:  # `occi compute list | head -1`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)


if __name__ == "__main__":
    main()

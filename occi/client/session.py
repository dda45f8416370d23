"""One invocation's state, shared by every command through click's context: the options that
make the profile, the output format, and (made on first use) the API and the catalog."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from occi.client import config
from occi.client.api import OcciApi
from occi.client.failures import ClientFailure, UsageFailure
from occi.client.names import Catalog, cid
from occi.client.output import FORMATS, Output

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Session:
    options: dict[str, Any] = field(default_factory=dict)
    output: Output = field(default_factory=Output)
    _api: OcciApi | None = None
    _profile: config.Profile | None = None

    def profile(self) -> config.Profile:
        if self._profile is None:
            try:
                self._profile = config.load(self.options)
            except config.ConfigError as exc:
                raise UsageFailure(str(exc)) from None
        return self._profile

    def api(self) -> OcciApi:
        if self._api is None:
            self._api = OcciApi(self.profile())
        return self._api

    def catalog(self) -> Catalog:
        return Catalog(self.api().categories())

    def mixins_by_id(self) -> dict[str, dict[str, Any]]:
        return {cid(m): m for m in self.api().categories()["mixins"]}

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


pass_session = click.make_pass_decorator(Session, ensure=True)


def _set_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(Session).output.format = value


def _set_columns(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(Session).output.columns = [
            c.strip() for c in value.split(",") if c.strip()
        ]


def output_options(f: F) -> F:
    """-o/--output and --columns on a command (they may also come before it)."""
    f = click.option(
        "--columns",
        metavar="A,B,...",
        expose_value=False,
        callback=_set_columns,
        help="Only these columns (table, csv; json and yaml print just these fields).",
    )(f)
    return click.option(
        "-o",
        "--output",
        type=click.Choice(FORMATS),
        expose_value=False,
        callback=_set_format,
        help="Output format (table).",
    )(f)


def wait_options(f: F) -> F:
    f = click.option(
        "--timeout",
        type=click.FloatRange(0.1, 86400),
        default=300,
        show_default=True,
        help="Seconds --wait waits before giving up (exit 3).",
    )(f)
    return click.option(
        "--wait/--no-wait",
        "wait_",
        default=True,
        show_default=True,
        help="Wait until the state is reached, showing the state message.",
    )(f)


class OcciGroup(click.Group):
    """A group turning a ClientFailure into its message on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClientFailure as exc:
            click.echo(f"occi: {exc.message}", err=True)
            ctx.exit(exc.exit_code)
        finally:
            if ctx.parent is None and isinstance(ctx.obj, Session):
                ctx.obj.close()

"""What can go wrong in an `occi` command, each with its exit code: the one table the command,
its help text and the README share."""

from __future__ import annotations

#: exit code -> what it means (printed by `occi --help`)
EXIT_CODES = {
    0: "done",
    1: "failed (the server's or the entity's error message is printed)",
    2: "usage: a bad option, argument, name or configuration",
    3: "timeout: the state was not reached within --timeout",
    4: "not found: no such entity, category, host, cluster or zone",
    5: "authentication: credentials refused (401) or not allowed (403)",
}
#: 403 codes that say who you are may not do this (the others, e.g. quota_exceeded, are failures)
AUTH_CODES = {"forbidden", "project_forbidden", "no_role", "read_only_role"}


class ClientFailure(Exception):
    """A command that did not do what it was asked; `exit_code` from EXIT_CODES."""

    exit_code = 1
    #: where the server kept an entity anyway (a create whose platform work failed)
    location: str | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class Failed(ClientFailure):
    exit_code = 1


class UsageFailure(ClientFailure):
    exit_code = 2


class TimedOut(ClientFailure):
    exit_code = 3


class NotFound(ClientFailure):
    exit_code = 4


class AuthFailed(ClientFailure):
    exit_code = 5


def for_status(status: int, code: str | None, message: str) -> ClientFailure:
    """The failure of an HTTP error answer."""
    if status == 401:
        return AuthFailed(message, status=status, code=code)
    if status == 403 and (code or "forbidden") in AUTH_CODES:
        return AuthFailed(message, status=status, code=code)
    if status == 404:
        return NotFound(message, status=status, code=code)
    return Failed(message, status=status, code=code)


def help_text() -> str:
    return "\b\nExit codes:\n" + "\n".join(f"  {n}  {text}" for n, text in EXIT_CODES.items())

"""The parameters of an EC2 Query request (`Action=...&InstanceId.1=...&Filter.1.Name=...`):
bounded on the way in, read as strings, whole numbers, booleans, lists (`Name.N`), filters
(`Filter.N.Name`, `Filter.N.Value.M`) and tags. Errors are EC2's (InvalidParameterValue,
MissingParameter). Pure: no HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from occi.ec2.errors import Ec2Error, invalid, missing

#: parameters in one request
MAX_PARAMS = 1000
#: length of a parameter's name
MAX_NAME = 200
#: length of a value (UserData is at most 16 KB before Base64 in EC2)
MAX_VALUE = 64 * 1024
#: the largest N in Name.N
MAX_INDEX = 1000
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:\-]*")


class Params:
    """One request's parameters (the form's, or the query string's for GET)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]):
        if len(pairs) > MAX_PARAMS:
            raise invalid(f"the request has more than {MAX_PARAMS} parameters")
        self.values: dict[str, str] = {}
        for name, value in pairs:
            if len(name) > MAX_NAME or not _NAME.fullmatch(name):
                raise invalid(f"{name[:60]!r} is not a parameter name")
            if len(value) > MAX_VALUE:
                raise invalid(f"the parameter {name} is longer than {MAX_VALUE} characters")
            if name in self.values:
                raise invalid(f"the parameter {name} is given twice")
            self.values[name] = value

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name, default)

    def required(self, name: str) -> str:
        value = self.values.get(name)
        if value is None or value == "":
            raise missing(name)
        return value

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        text = self.values.get(name)
        if text is None:
            return default
        if not re.fullmatch(r"-?\d{1,12}", text.strip()):
            raise invalid(f"{name} must be a whole number, not {text[:40]!r}")
        value = int(text)
        if not low <= value <= high:
            raise invalid(f"{name} must be from {low} to {high}, not {value}")
        return value

    def flag(self, name: str) -> bool:
        text = self.values.get(name)
        if text is None:
            return False
        if text.lower() not in ("true", "false"):
            raise invalid(f"{name} must be true or false, not {text[:40]!r}")
        return text.lower() == "true"

    def indexed(self, prefix: str) -> dict[int, str]:
        """`prefix.N=value` parameters by N (from 1)."""
        out: dict[int, str] = {}
        for name, value in self.values.items():
            if name.startswith(prefix + "."):
                rest = name[len(prefix) + 1 :]
                index = _index(name, rest.split(".", 1)[0])
                if "." not in rest:
                    out[index] = value
        return out

    def listed(self, prefix: str) -> list[str]:
        """`prefix.1`, `prefix.2`, ... as a list, in N order."""
        return [v for _, v in sorted(self.indexed(prefix).items())]

    def members(self, prefix: str) -> list[dict[str, Any]]:
        """`prefix.N.Field[.M...]=value` as a list of nested dicts, in N order (a field with
        its own `.M` index is a dict by M)."""
        groups: dict[int, dict[str, Any]] = {}
        for name, value in self.values.items():
            if not name.startswith(prefix + "."):
                continue
            parts = name[len(prefix) + 1 :].split(".")
            if len(parts) < 2:
                continue
            node = groups.setdefault(_index(name, parts[0]), {})
            for part in parts[1:-1]:
                key: Any = _index(name, part) if part.isdigit() else part
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    raise invalid(f"the parameter {name} clashes with another")
                node = child
            last: Any = _index(name, parts[-1]) if parts[-1].isdigit() else parts[-1]
            if isinstance(node.get(last), dict):
                raise invalid(f"the parameter {name} clashes with another")
            node[last] = value
        return [groups[i] for i in sorted(groups)]

    def filters(self) -> list[tuple[str, list[str]]]:
        """`Filter.N.Name` with its `Filter.N.Value.M` values."""
        out = []
        for f in self.members("Filter"):
            name = f.get("Name")
            if not isinstance(name, str) or not name:
                raise missing("Filter.N.Name")
            values = f.get("Value", {})
            if not isinstance(values, dict):
                raise invalid(f"the filter {name} gives its values as Filter.N.Value.M")
            out.append((name, [str(values[i]) for i in sorted(values)]))
        return out

    def tags(self, prefix: str = "Tag") -> list[tuple[str, str | None]]:
        """`Tag.N.Key` / `Tag.N.Value` pairs (the value None when not given)."""
        return [tag_of(t, prefix) for t in self.members(prefix)]


def tag_of(member: dict[str, Any], what: str = "Tag") -> tuple[str, str | None]:
    key, value = member.get("Key"), member.get("Value")
    if not isinstance(key, str) or not key:
        raise missing(f"{what}.N.Key")
    if len(key) > 128:
        raise invalid(f"the tag key {key[:40]!r}... is longer than 128 characters")
    if value is not None and (not isinstance(value, str) or len(value) > 256):
        raise invalid(f"the value of the tag {key} must be at most 256 characters")
    if key.lower().startswith("aws:"):
        raise invalid("tag keys starting with aws: are reserved")
    return key, value


def _index(name: str, text: str) -> int:
    if not text.isdigit() or len(text) > 4 or not 1 <= int(text) <= MAX_INDEX:
        raise Ec2Error(
            "InvalidParameterValue",
            f"{name[:80]}: list members are numbered from 1 to {MAX_INDEX}",
        )
    return int(text)

"""How EC2 narrows and cuts its lists: tag sets, filters (`Filter.N`, with `*` and `?`
wildcards, `tag:KEY` and `tag-key`) and pages (MaxResults, and NextToken: opaque, bound to the
request that made it). No HTTP.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from occi.ec2.errors import Ec2Error, invalid
from occi.ec2.front import Call

T = TypeVar("T")


def tag_set(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted((tags or {}).items())]


#: a filter's values matched against what an item has for it (a list: any matches)
Getter = Callable[[T], Sequence[str] | str | None]


def _matches(pattern: str, value: str) -> bool:
    """EC2's filter values may hold * and ? wildcards."""
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def apply_filters(
    items: Iterable[T],
    filters: list[tuple[str, list[str]]],
    getters: dict[str, Getter[T]],
    tags: Callable[[T], dict[str, str]] | None = None,
) -> list[T]:
    """The items every filter matches (a filter matches when any of its values does)."""
    checks: list[Callable[[T], bool]] = []
    for name, values in filters:
        if tags is not None and (name.startswith("tag:") or name == "tag-key"):
            checks.append(_tag_check(tags, name, values))
            continue
        getter = getters.get(name)
        if getter is None:
            raise invalid(f"The filter '{name[:80]}' is invalid")

        def check(item: T, getter: Getter[T] = getter, values: list[str] = values) -> bool:
            got = getter(item)
            have = [got] if isinstance(got, str) else list(got or [])
            return any(_matches(v, h) for v in values for h in have)

        checks.append(check)
    return [item for item in items if all(c(item) for c in checks)]


def _tag_check(
    tags: Callable[[T], dict[str, str]], name: str, values: list[str]
) -> Callable[[T], bool]:
    """`tag:KEY` (the tag KEY has one of the values) or `tag-key` (a tag has one of the keys)."""
    if name == "tag-key":
        return lambda item: any(_matches(v, k) for v in values for k in tags(item))
    key = name[4:]

    def check(item: T) -> bool:
        have = tags(item)
        return key in have and any(_matches(v, have[key]) for v in values)

    return check


# ---------------------------------------------------------------------------------- pages
def page(call: Call, items: list[T], *, min_results: int = 5) -> tuple[list[T], str | None]:
    """The slice of `items` MaxResults and NextToken ask for, and the token of the next one.
    Tokens are opaque: an offset bound to the action and its other parameters."""
    params = call.params
    size = params.integer("MaxResults", None, min_results, 1000)
    token = params.get("NextToken")
    digest = _request_digest(call)
    start = 0
    if token:
        start = _offset(token, digest)
    if size is None:
        if token is None:
            return items, None
        size = 1000
    chunk = items[start : start + size]
    more = start + size < len(items)
    return chunk, (_token(start + size, digest) if more else None)


def _request_digest(call: Call) -> str:
    kept = sorted(
        (k, v) for k, v in call.params.values.items() if k not in ("NextToken", "MaxResults")
    )
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:16]


def _token(offset: int, digest: str) -> str:
    raw = json.dumps({"o": offset, "d": digest}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(token: str, digest: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
        offset = doc["o"]
        if not isinstance(offset, int) or offset < 0 or doc["d"] != digest:
            raise ValueError
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise Ec2Error(
            "InvalidPaginationToken",
            "The pagination token is invalid for this request (give the same parameters as "
            "the request that returned it)",
        ) from None
    return offset

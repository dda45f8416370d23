"""OCCI's text/plain rendering (GFD.229) on the client's side: bodies of `Category`,
`X-OCCI-Attribute`, `Link` and `X-OCCI-Location` lines read into, and written from, the same
dictionaries the JSON rendering (GFD.226) has, so every command works on one shape."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

ACTION_MARK = "?action="


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """`text` cut at each `sep` that is not inside double quotes (backslash escapes honoured)."""
    parts, cur, quoted, escaped = [], [], False, False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            cur.append(ch)
            escaped = True
        elif ch == '"':
            cur.append(ch)
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


def value_of(text: str) -> Any:
    """An attribute value: a quoted string (JSON escapes), else a number or a boolean."""
    text = text.strip()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        try:
            return json.loads(text)
        except ValueError:
            return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, dict)):
        value = json.dumps(value)
    return json.dumps(str(value), ensure_ascii=False)


def params(text: str) -> tuple[str, dict[str, Any]]:
    """'term; a="x"; b=1' -> ('term', {'a': 'x', 'b': 1})."""
    first, *rest = split_outside_quotes(text, ";") or [""]
    out: dict[str, Any] = {}
    for p in rest:
        name, _, value = p.partition("=")
        out[name.strip()] = value_of(value)
    return first.strip(), out


def lines(body: str) -> Iterator[tuple[str, str]]:
    """(lower-case header name, one value) for each line, values split at top-level commas."""
    for line in body.splitlines():
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        if name == "x-occi-location":
            for v in value.split(","):
                if v.strip():
                    yield name, v.strip()
        else:
            for v in split_outside_quotes(value, ","):
                yield name, v


def _category(text: str) -> dict[str, Any]:
    term, p = params(text)
    doc: dict[str, Any] = {
        "term": term,
        "scheme": str(p.get("scheme", "")),
        "class": p.get("class"),
    }
    for key in ("title", "location"):
        if key in p:
            doc[key] = str(p[key])
    if p.get("rel"):
        doc["rel"] = str(p["rel"]).split()
    names = str(p.get("attributes", "")).split()
    doc["attributes"] = {n.split("{", 1)[0]: {"mutable": "{immutable}" not in n} for n in names}
    doc["actions"] = str(p.get("actions", "")).split()
    return doc


def parse_categories(body: str) -> dict[str, list[dict[str, Any]]]:
    """A query interface answer as {"kinds", "mixins", "actions"} (JSON's shape: a mixin's
    `rel` is its `depends`, a kind's its `parent`)."""
    out: dict[str, list[dict[str, Any]]] = {"kinds": [], "mixins": [], "actions": []}
    for name, value in lines(body):
        if name != "category":
            continue
        doc = _category(value)
        cls = doc.pop("class", None)
        rel = doc.pop("rel", [])
        if cls == "kind":
            if rel:
                doc["parent"] = rel[0]
            out["kinds"].append(doc)
        elif cls == "mixin":
            doc["depends"] = rel
            doc["applies"] = []
            out["mixins"].append(doc)
        elif cls == "action":
            out["actions"].append(doc)
    return out


def parse_entity(body: str, location: str = "", base_url: str = "") -> dict[str, Any]:
    """One entity as a JSON-rendering dictionary (kind, mixins, attributes, actions, links, id,
    title, location; source and target for a link). Its links' own locations are made absolute
    with `base_url`, the service root, as the JSON rendering has them."""
    doc: dict[str, Any] = {"kind": "", "mixins": [], "attributes": {}, "actions": [], "links": []}
    for name, value in lines(body):
        if name == "category":
            cat = _category(value)
            cid = cat["scheme"] + cat["term"]
            if cat.get("class") == "kind":
                doc["kind"] = cid
            else:
                doc["mixins"].append(cid)
        elif name == "x-occi-attribute":
            key, _, raw = value.partition("=")
            doc["attributes"][key.strip()] = value_of(raw)
        elif name == "link":
            target, p = params(value)
            target = target.strip("<>")
            if ACTION_MARK in target:
                doc["actions"].append(str(p.get("rel", "")))
                continue
            link: dict[str, Any] = {
                "kind": str(p.pop("category", "")).split(" ")[0],
                "location": _absolute(str(p.pop("self", "")), base_url),
                "target": {"location": target, "kind": str(p.pop("rel", ""))},
                "attributes": {k: v for k, v in p.items() if "." in k},
            }
            doc["links"].append(link)
    attrs = doc["attributes"]
    doc["id"] = attrs.get("occi.core.id")
    if "occi.core.title" in attrs:
        doc["title"] = attrs["occi.core.title"]
    for end in ("source", "target"):
        if f"occi.core.{end}" in attrs:
            doc[end] = {"location": attrs[f"occi.core.{end}"]}
    if location:
        doc["location"] = location
    return doc


def _absolute(location: str, base_url: str) -> str:
    return base_url + location if location.startswith("/") else location


def parse_locations(body: str) -> list[str]:
    return [v for name, v in lines(body) if name == "x-occi-location"]


def category_line(cid: str, cls: str, **extra: Any) -> str:
    scheme, _, term = cid.rpartition("#")
    text = f'Category: {term}; scheme="{scheme}#"; class="{cls}"'
    for key, value in extra.items():
        if value:
            text += f"; {key}={render_value(value)}"
    return text


def attribute_lines(attributes: dict[str, Any]) -> Iterable[str]:
    for key, value in attributes.items():
        if value is not None:
            yield f"X-OCCI-Attribute: {key}={render_value(value)}"


def render_entity(doc: dict[str, Any]) -> str:
    """A create or update body from a JSON-rendering dictionary."""
    out = []
    if doc.get("kind"):
        out.append(category_line(doc["kind"], "kind"))
    out += [category_line(m, "mixin") for m in doc.get("mixins", [])]
    attrs = dict(doc.get("attributes", {}))
    for end in ("source", "target"):
        if doc.get(end):
            attrs[f"occi.core.{end}"] = doc[end]["location"]
    for link in doc.get("links", []):
        text = f'Link: <{link["target"]["location"]}>; rel="{link["target"].get("kind", "")}"'
        if link.get("kind"):
            text += f'; category="{link["kind"]}"'
        out.append(text)
    out += attribute_lines(attrs)
    return "\n".join(out) + "\n"


def render_action(action: str, attributes: dict[str, Any]) -> str:
    return "\n".join([category_line(action, "action"), *attribute_lines(attributes)]) + "\n"


def render_locations(locations: list[str]) -> str:
    return "".join(f"X-OCCI-Location: {loc}\n" for loc in locations)


def render_mixin(doc: dict[str, Any]) -> str:
    """A user mixin's definition (or, with scheme and term only, its removal)."""
    cid = doc["scheme"] + doc["term"]
    extra = {"title": doc.get("title"), "location": doc.get("location")}
    if doc.get("depends"):
        extra["rel"] = " ".join(doc["depends"])
    return category_line(cid, "mixin", **extra) + "\n"

"""The schemas in schemas/ as validators: JSON Schema for JSON documents, XSD for XML documents.

Pure helpers for the renderings (no falcon, no SQL); they read files under schemas/ once and
raise rendering.base.ParseError with the failing path when a document does not fit.
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from rendering.base import ParseError


def _schema_dir() -> Path:
    """The `schemas` package's folder, wherever it is imported from: the source tree, an
    editable install or a wheel (lxml resolves occi.xsd's import beside it, so a real folder)."""
    found = files("schemas")
    if not isinstance(found, Path):
        raise RuntimeError(f"the schemas package must be a folder on disk, not {found}")
    return found


SCHEMA_DIR = _schema_dir()
JSON_SCHEMA_FILE = SCHEMA_DIR / "occi-1.2.schema.json"
XSD_FILE = SCHEMA_DIR / "occi.xsd"
VOCABULARY_FILE = SCHEMA_DIR / "occi.ttl"

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ====================================================================== JSON Schema
@lru_cache(maxsize=1)
def json_schema() -> dict[str, Any]:
    """The corrected OCCI 1.2 JSON schema (schemas/occi-1.2.schema.json)."""
    return json.loads(JSON_SCHEMA_FILE.read_text(encoding="utf-8"))


@cache
def _json_validator(definition: str | None):
    import jsonschema

    schema = json_schema()
    if definition is not None:
        if definition not in schema["definitions"]:
            raise KeyError(f"no definition {definition!r} in {JSON_SCHEMA_FILE.name}")
        schema = {**schema, "$ref": f"#/definitions/{definition}"}
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def json_path(parts: Any) -> str:
    """A JSON path the way the JSON rendering writes it: resources[0].attributes["a.b"]."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _IDENT_RE.fullmatch(str(p)):
            out += f".{p}" if out else str(p)
        else:
            out += f"[{json.dumps(str(p))}]"
    return out


def json_errors(doc: Any, definition: str | None = None) -> list[str]:
    """Every way `doc` misses the schema (`definition` of it, or the root: any emitted
    document), each as 'path: reason'; empty when it fits."""
    validator = _json_validator(definition)
    return [
        f"{json_path(e.absolute_path) or 'the body'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]


def validate_json(doc: Any, definition: str | None = None) -> None:
    """Raise ParseError naming the failing path when `doc` does not fit the schema."""

    validator = _json_validator(definition)
    errors = list(validator.iter_errors(doc))
    if not errors:
        return
    error = _deepest(errors)
    path = json_path(error.absolute_path) or "the body"
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    raise ParseError(
        f"{path} does not fit the OCCI JSON schema ({JSON_SCHEMA_FILE.name}): {message}"
    )


def _leaves(error: Any) -> list[Any]:
    if not error.context:
        return [error]
    return [leaf for e in error.context for leaf in _leaves(e)]


def _deepest(errors: list[Any]) -> Any:
    """The most specific cause: among the alternatives of anyOf/oneOf, the error that got
    furthest into the document (a wrong member type rather than 'not an array')."""
    leaves = [leaf for e in errors for leaf in _leaves(e)]
    depth = max(len(e.absolute_path) for e in leaves)
    import jsonschema

    deepest = [e for e in leaves if len(e.absolute_path) == depth]
    specific = [e for e in deepest if e.validator != "type"] or deepest
    return jsonschema.exceptions.best_match(specific)


# ====================================================================== XML Schema
def safe_xml_parser():
    """An lxml parser that resolves no entity, loads no DTD and never touches the network."""
    from lxml import etree

    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


@lru_cache(maxsize=1)
def xml_schema():
    """schemas/occi.xsd as an lxml XMLSchema (its import of occi-xs-facets.xsd is a local file)."""
    from lxml import etree

    doc = etree.parse(str(XSD_FILE), safe_xml_parser())
    return etree.XMLSchema(doc)


def xml_errors(root: Any) -> list[str]:
    """Every way an lxml element (a whole document) misses schemas/occi.xsd; empty when valid."""
    schema = xml_schema()
    if schema.validate(root):
        return []
    return [f"line {e.line}, {e.path}: {e.message}" for e in schema.error_log]


def validate_xml(root: Any) -> None:
    """Raise ParseError naming the failing element when `root` does not fit schemas/occi.xsd."""
    schema = xml_schema()
    if schema.validate(root):
        return
    e = schema.error_log[0]
    raise ParseError(
        f"the XML body does not fit the OCCI XML schema ({XSD_FILE.name}) at line {e.line}, "
        f"{_readable_xpath(root, e.path)}: {_readable_xml_message(e.message)}"
    )


def _local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else "?"


def _readable_xpath(root: Any, path: str | None) -> str:
    """libxml2 reports /*/*[2]; name the elements: /resource/attribute[@name='a']."""
    if not path:
        return "the document"
    try:
        found = root.getroottree().xpath(path)
    except Exception:
        return path
    if not found or not hasattr(found[0], "tag"):
        return path
    steps = []
    el = found[0]
    while el is not None:
        step = _local(el.tag)
        if el.get("name") is not None:
            step += f"[@name={el.get('name')!r}]"
        elif el.get("term") is not None:
            step += f"[@term={el.get('term')!r}]"
        else:
            parent = el.getparent()
            if parent is not None:
                same = [c for c in parent if c.tag == el.tag]
                if len(same) > 1:
                    step += f"[{same.index(el) + 1}]"
        steps.append(step)
        el = el.getparent()
    return "/" + "/".join(reversed(steps))


def _readable_xml_message(message: str) -> str:
    return message.replace("{http://schemas.ogf.org/occi}", "")


__all__ = [
    "SCHEMA_DIR",
    "JSON_SCHEMA_FILE",
    "XSD_FILE",
    "VOCABULARY_FILE",
    "json_schema",
    "json_errors",
    "validate_json",
    "json_path",
    "safe_xml_parser",
    "xml_schema",
    "xml_errors",
    "validate_xml",
]

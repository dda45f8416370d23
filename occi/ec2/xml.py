"""EC2's XML answers: `<{Action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` with
a `requestId` and the action's elements, and the error document `<Response><Errors><Error>
<Code/><Message/></Error></Errors><RequestID/></Response>`.

Actions hand a dict whose keys are the wire names (botocore's locationName); a list renders as
`<item>` children (EC2's `xxxSet`), a dict as nested elements, True/False as true/false, a
datetime in ISO 8601 UTC, None not at all. Pure: no HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from occi.ec2.errors import VERSION

NAMESPACE = f"http://ec2.amazonaws.com/doc/{VERSION}/"
CONTENT_TYPE = "text/xml;charset=UTF-8"
#: what XML 1.0 cannot carry (a title may hold anything a client sent)
_UNSAFE = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return _UNSAFE.sub("\ufffd", str(value))


def _fill(parent: Any, data: Mapping[str, Any], ns: str) -> None:
    for name, value in data.items():
        if value is None:
            continue
        el = etree.SubElement(parent, f"{{{ns}}}{name}") if ns else etree.SubElement(parent, name)
        _value(el, value, ns)


def _value(el: Any, value: Any, ns: str) -> None:
    if isinstance(value, Mapping):
        _fill(el, value, ns)
    elif isinstance(value, list | tuple):
        for item in value:
            child = etree.SubElement(el, f"{{{ns}}}item")
            _value(child, item, ns)
    else:
        el.text = _text(value)


def answer(action: str, data: Mapping[str, Any], request_id: str) -> bytes:
    """The XML answer of `action` (e.g. DescribeInstances) holding `data`."""
    root = etree.Element(f"{{{NAMESPACE}}}{action}Response", nsmap={None: NAMESPACE})
    _fill(root, {"requestId": request_id, **data}, NAMESPACE)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def error(code: str, message: str, request_id: str) -> bytes:
    """EC2's error document."""
    root = etree.Element("Response")
    _fill(
        root,
        {"Errors": {"Error": {"Code": code, "Message": message}}, "RequestID": request_id},
        "",
    )
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

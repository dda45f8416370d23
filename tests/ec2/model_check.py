"""Every EC2 answer checked against botocore's own service model: each XML element must be a
member of the operation's output shape (by its locationName), lists `<item>`s of their member
shape, and the error document EC2's. What a real client parses is what the server must send."""

from __future__ import annotations

from typing import Any

import botocore.session
from lxml import etree

NAMESPACE = "{http://ec2.amazonaws.com/doc/2016-11-15/}"
_MODEL = botocore.session.get_session().get_service_model("ec2")


def _check(el: Any, shape: Any, path: str) -> None:
    tag = el.tag.replace(NAMESPACE, "")
    if shape.type_name == "structure":
        names = {m.serialization.get("name", n): m for n, m in shape.members.items()}
        for child in el:
            name = child.tag.replace(NAMESPACE, "")
            assert name in names, f"{path}/{name}: not in the shape {shape.name}"
            _check(child, names[name], f"{path}/{name}")
    elif shape.type_name == "list":
        member = shape.member
        item = member.serialization.get("name", "item")
        for child in el:
            name = child.tag.replace(NAMESPACE, "")
            assert name == item, f"{path}: a list holds <{item}>, not <{name}>"
            _check(child, member, f"{path}/{name}")
    else:
        assert len(el) == 0, f"{path} ({tag}) is a {shape.type_name}, not an element tree"
        text = el.text or ""
        if shape.type_name == "boolean":
            assert text in ("true", "false"), f"{path}: {text!r} is not a boolean"
        elif shape.type_name in ("integer", "long"):
            int(text)
        elif shape.type_name == "timestamp":
            assert text.endswith("Z") and "T" in text, f"{path}: {text!r} is not ISO 8601 UTC"
        elif shape.enum:
            pass  # EC2 clients take unknown enum values


def check_answer(operation: str, status: int, body: bytes) -> None:
    """Raise AssertionError unless `body` is the answer botocore's model wants."""
    root = etree.fromstring(body)
    if status >= 300:
        assert root.tag == "Response", root.tag
        assert [c.tag for c in root] == ["Errors", "RequestID"], body
        (error,) = root.find("Errors")
        assert [c.tag for c in error] == ["Code", "Message"], body
        return
    op = _MODEL.operation_model(operation)
    assert root.tag == f"{NAMESPACE}{operation}Response", root.tag
    children = list(root)
    assert children and children[0].tag == f"{NAMESPACE}requestId", "requestId comes first"
    shape = op.output_shape
    if shape is None:  # an action that answers nothing but its request id
        assert len(children) == 1, f"{operation} answers only its requestId"
        return
    for child in children[1:]:
        name = child.tag.replace(NAMESPACE, "")
        members = {m.serialization.get("name", n): m for n, m in shape.members.items()}
        assert name in members, f"{operation}: <{name}> is not in its output shape"
        _check(child, members[name], f"{operation}/{name}")

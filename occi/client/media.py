"""The two renderings the `occi` command speaks: OCCI JSON (GFD.226, the default) and text/plain
(GFD.229, `--media text/plain`). Both read answers into, and write requests from, JSON-rendering
dictionaries, so the commands never look at the wire format."""

from __future__ import annotations

import json
from typing import Any, Protocol

import httpx

from occi.client import textplain
from occi.client.transport import Transport

JSON = "application/occi+json"
TEXT = "text/plain"


class Codec(Protocol):
    media_type: str

    def categories(self, resp: httpx.Response) -> dict[str, list[dict[str, Any]]]: ...
    def entity(self, resp: httpx.Response) -> dict[str, Any]: ...
    def collection(self, transport: Transport, resp: httpx.Response) -> list[dict[str, Any]]: ...
    def entity_body(self, doc: dict[str, Any]) -> str: ...
    def action_body(self, action: str, attributes: dict[str, Any]) -> str: ...
    def locations_body(self, locations: list[str]) -> str: ...
    def mixins_body(self, docs: list[dict[str, Any]]) -> str: ...


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        from occi.client.failures import Failed

        raise Failed(f"the server's answer is not JSON: {resp.text[:200]!r}") from None


class JsonCodec:
    media_type = JSON

    def categories(self, resp: httpx.Response) -> dict[str, list[dict[str, Any]]]:
        doc = _json(resp)
        return {k: list(doc.get(k, [])) for k in ("kinds", "mixins", "actions")}

    def entity(self, resp: httpx.Response) -> dict[str, Any]:
        doc = _json(resp)
        if "location" not in doc and resp.headers.get("Location"):
            doc["location"] = resp.headers["Location"]
        return doc

    def collection(self, transport: Transport, resp: httpx.Response) -> list[dict[str, Any]]:
        doc = _json(resp)
        if isinstance(doc, dict):
            return list(doc.get("resources", [])) + list(doc.get("links", []))
        return list(doc)

    def entity_body(self, doc: dict[str, Any]) -> str:
        return json.dumps(doc)

    def action_body(self, action: str, attributes: dict[str, Any]) -> str:
        return json.dumps({"action": action, "attributes": attributes})

    def locations_body(self, locations: list[str]) -> str:
        return json.dumps({"locations": locations})

    def mixins_body(self, docs: list[dict[str, Any]]) -> str:
        return json.dumps({"mixins": docs})


class TextCodec:
    media_type = TEXT

    def __init__(self, base_url: str = ""):
        self.base_url = base_url

    def categories(self, resp: httpx.Response) -> dict[str, list[dict[str, Any]]]:
        return textplain.parse_categories(resp.text)

    def entity(self, resp: httpx.Response) -> dict[str, Any]:
        location = resp.headers.get("Location") or str(resp.request.url)
        return textplain.parse_entity(resp.text, location.split("?", 1)[0], self.base_url)

    def collection(self, transport: Transport, resp: httpx.Response) -> list[dict[str, Any]]:
        """text/plain lists locations only: each member is read in turn."""
        out = []
        for loc in textplain.parse_locations(resp.text):
            one = transport.send("GET", loc, headers={"Accept": TEXT})
            out.append(self.entity(one))
        return out

    def entity_body(self, doc: dict[str, Any]) -> str:
        return textplain.render_entity(doc)

    def action_body(self, action: str, attributes: dict[str, Any]) -> str:
        return textplain.render_action(action, attributes)

    def locations_body(self, locations: list[str]) -> str:
        return textplain.render_locations(locations)

    def mixins_body(self, docs: list[dict[str, Any]]) -> str:
        return "".join(textplain.render_mixin(d) for d in docs)


def codec_for(media_type: str, base_url: str = "") -> Codec:
    """The codec of a media type; `base_url` is the service root (text/plain's paths)."""
    return TextCodec(base_url) if media_type == TEXT else JsonCodec()

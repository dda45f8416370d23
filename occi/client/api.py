"""The OCCI operations the commands use (discover, list, read, create, update, delete, act,
mixins) and the JSON admin API (/-/admin/), over one Transport in the profile's rendering."""

from __future__ import annotations

import json
from typing import Any

from occi.client.config import Profile
from occi.client.failures import NotFound
from occi.client.media import Codec, codec_for
from occi.client.transport import Transport

QUERY = "/-/"
ADMIN = "/-/admin/"


class OcciApi:
    def __init__(self, profile: Profile, transport: Transport | None = None):
        self.profile = profile
        self.transport = transport or Transport(profile)
        self.codec: Codec = codec_for(profile.media, profile.url)
        self._categories: dict[str, list[dict[str, Any]]] | None = None

    def close(self) -> None:
        self.transport.close()

    # ------------------------------------------------------------------ OCCI
    def _send(self, method: str, path: str, body: str | None = None, **kw: Any) -> Any:
        headers = {"Accept": self.codec.media_type}
        if body is not None:
            headers["Content-Type"] = self.codec.media_type
        return self.transport.send(method, path, headers=headers, content=body, **kw)

    def categories(self) -> dict[str, list[dict[str, Any]]]:
        """The query interface (read once per invocation)."""
        if self._categories is None:
            self._categories = self.codec.categories(self._send("GET", QUERY))
        return self._categories

    def forget_categories(self) -> None:
        self._categories = None

    def collection(self, path: str) -> list[dict[str, Any]]:
        return self.codec.collection(self.transport, self._send("GET", path))

    def get(self, location: str) -> dict[str, Any]:
        return self.codec.entity(self._send("GET", location))

    def create(self, path: str, doc: dict[str, Any]) -> dict[str, Any]:
        resp = self._send("POST", path, self.codec.entity_body(doc))
        if not resp.content.strip() and resp.headers.get("Location"):
            return self.get(resp.headers["Location"])
        return self.codec.entity(resp)

    def update(self, location: str, doc: dict[str, Any]) -> dict[str, Any]:
        """A partial update (POST to the entity): the attributes and mixins given. A server
        answering without a body (some do) is asked for the entity."""
        resp = self._send("POST", location, self.codec.entity_body(doc))
        return self.codec.entity(resp) if resp.content.strip() else self.get(location)

    def delete(self, location: str) -> None:
        self._send("DELETE", location)

    def action(self, location: str, action: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """The entity after the action (for `save`: the new image's mixin)."""
        term = action.rpartition("#")[2]
        resp = self._send(
            "POST", location, self.codec.action_body(action, attributes), params={"action": term}
        )
        if not resp.content.strip():  # a server answering 200 or 204 without a body
            return self.get(location)
        if self.codec.media_type != "text/plain":
            return self.codec.entity(resp)
        if term == "save":
            return self.codec.categories(resp)["mixins"][0]
        return self.codec.entity(resp)

    def define_mixins(self, docs: list[dict[str, Any]]) -> None:
        self._send("POST", QUERY, self.codec.mixins_body(docs))
        self.forget_categories()

    def remove_mixin(self, doc: dict[str, Any]) -> None:
        body = self.codec.mixins_body([{"scheme": doc["scheme"], "term": doc["term"]}])
        self._send("DELETE", QUERY, body)
        self.forget_categories()

    def associate(self, mixin_location: str, locations: list[str], remove: bool = False) -> None:
        method = "DELETE" if remove else "POST"
        self._send(method, mixin_location, self.codec.locations_body(locations))

    # ------------------------------------------------------------------ the admin API
    def admin(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """A JSON admin API call (always JSON, whatever the profile's rendering)."""
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body)
        query = {k: v for k, v in params.items() if v is not None}
        resp = self.transport.send(
            method, ADMIN + path, headers=headers, content=content, params=query or None
        )
        return resp.json()

    def entity_or_none(self, location: str) -> dict[str, Any] | None:
        try:
            return self.get(location)
        except NotFound:
            return None

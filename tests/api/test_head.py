"""HEAD answers with the headers GET would send, Content-Length included (RFC 9110 9.3.2),
for every kind of path and every rendering, errors too."""

from __future__ import annotations

import pytest

from tests.api.conftest import INFRA

MEDIA_TYPES = [
    "text/plain",
    "text/occi",
    "text/uri-list",
    "application/occi+json",
    "application/json",
    "application/occi+xml",
    "text/turtle",
    "application/ld+json",
    "application/rdf+xml",
]


def _compare(api, path, accept, headers=None):
    h = {"Accept": accept, **(headers or {})}
    get = api.client.simulate_get(path, headers=h)
    head = api.client.simulate_head(path, headers=h)
    assert head.status_code == get.status_code
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(get.content), (path, accept)
    # every request has its own id; everything else must agree
    per_request = ("date", "content-length", "x-request-id")
    g = {k: v for k, v in get.headers.items() if k not in per_request}
    hd = {k: v for k, v in head.headers.items() if k not in per_request}
    assert hd == g, (path, accept)
    return get.status_code


@pytest.mark.parametrize("accept", MEDIA_TYPES)
def test_head_matches_get(api, accept):
    r = api.create("compute", {"occi.core.title": "web"})
    entity = api.path_of(r)
    api.create("storage", {"occi.storage.size": 1.0})
    statuses = {
        "entity": _compare(api, entity, accept),
        "collection": _compare(api, "/compute/", accept),
        "every collection": _compare(api, "/storage/", accept),
        "mixin collection": _compare(api, "/mixin/resource_tpl/small/", accept),
        "query interface": _compare(api, "/-/", accept),
        "filtered query interface": _compare(
            api, "/-/", accept, {"Category": f'compute; scheme="{INFRA}"; class="kind"'}
        ),
        "missing entity": _compare(api, "/compute/no-such-id", accept),
        "missing collection": _compare(api, "/nowhere/", accept),
        "bad filter": _compare(api, "/-/", accept, {"Category": 'compute; scheme="unterminated'}),
        "bad page": _compare(api, "/compute/?page=x", accept),
    }
    assert statuses["missing entity"] == 404
    assert statuses["bad filter"] == 400 and statuses["bad page"] == 400
    if accept != "text/uri-list":
        assert statuses["entity"] == statuses["collection"] == 200


def test_head_of_a_streamed_collection_announces_its_length(api):
    """JSON and XML collections are streamed to GET (no Content-Length, chunked); HEAD renders
    and measures them."""
    for _ in range(3):
        api.create("compute")
    for accept in ("application/occi+json", "application/occi+xml"):
        head = api.client.simulate_head("/compute/", headers={"Accept": accept})
        get = api.client.simulate_get("/compute/", headers={"Accept": accept})
        assert int(head.headers["content-length"]) == len(get.content) > 100

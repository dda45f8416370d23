"""Generated hostile requests through the real WSGI app (SQLite + simulator, as tests/api builds
it): odd headers, query strings, JSON/text/XML bodies, mixin definitions with odd names and
patterns, huge numbers, deep nesting, lone surrogates, NUL, CR/LF.

What a client relies on, whatever it sends: never a 5xx; a 4xx comes in the rendering it asked
for; and a refused request changes nothing stored. Hypothesis runs derandomized with a fixed
number of examples, so the run is the same every time (and takes seconds). A few NUL cases run
on PostgreSQL too, whose text and jsonb columns cannot hold NUL at all.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from falcon import testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from occi.api.wsgi import build
from occi.settings import Settings

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
JSON = "application/occi+json"
SCHEME = "http://example.com/occi/fuzz#"

#: Accept value -> the media type its answers (and errors) come in
ACCEPTS = {
    JSON: JSON,
    "text/plain": "text/plain",
    "text/occi": "text/occi",
    "application/occi+xml": "application/occi+xml",
    "text/turtle": "text/turtle",
    "application/ld+json": "application/ld+json",
    "text/uri-list": "text/plain",  # it cannot carry an error message: text/plain does
}
CTYPES = [JSON, "text/plain", "text/occi", "application/occi+xml", "text/turtle", None]

FUZZ = settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# ---------------------------------------------------------------------- hostile pieces
hostile_char = st.sampled_from(
    [
        "\x00",
        "\r",
        "\n",
        "\r\n",
        "\ud800",
        "\udfff",
        '"',
        "\\",
        ";",
        ",",
        "=",
        "<",
        ">",
        "{",
        "}",
        "[",
        "]",
        "/",
        "..",
        "é",
        "\u2028",
        "\ufeff",
        "\x7f",
        "\t",
        " ",
        "#",
        "%",
        "&#0;",
    ]
)
hostile_text = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(hostile_char, st.text(max_size=3)), max_size=12).map("".join),
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3000).map(lambda n: "{" * n),
    st.sampled_from(["OCCI/" + "9" * 4301 + ".0", "1e400", "-0", "NaN", "Infinity", "true"]),
)
huge_number = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(300, 6000).map(lambda n: int("9" * min(n, 4000))),
    st.floats(),
)
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), huge_number, hostile_text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)
attr_name = st.one_of(
    st.sampled_from(
        [
            "occi.core.title",
            "occi.compute.cores",
            "occi.compute.memory",
            "com.example.x",
            "occi.core.id",
        ]
    ),
    hostile_text,
)
pattern = st.one_of(
    st.sampled_from(
        ["(a+)+b", "(a|a)*c", "(a*)*$", r"(a)\1", "(?=a)", "[", "a{99999}", "(x+x+)+y", ".*.*.*=.*"]
    ),
    hostile_text,
)


def _entity_json(draw) -> bytes:
    doc: dict = {"kind": draw(st.sampled_from([INFRA + "compute", INFRA + "storage", "x", ""]))}
    doc["attributes"] = draw(st.dictionaries(attr_name, json_value, max_size=4))
    if draw(st.booleans()):
        doc["mixins"] = draw(st.lists(hostile_text, max_size=3))
    if draw(st.booleans()):
        doc["title"] = draw(hostile_text)
    return json.dumps(doc).encode()


def _mixin_json(draw) -> bytes:
    m: dict = {"scheme": draw(st.sampled_from([SCHEME, "http://x#", ""]) | hostile_text)}
    m["term"] = draw(st.sampled_from(["fz", "fz2"]) | hostile_text)
    if draw(st.booleans()):
        m["location"] = draw(
            st.sampled_from(
                [
                    "/fz/",
                    "/x/../",
                    "/./",
                    "/-/",
                    "/healthz/",
                    "/metrics/",
                    "/console/",
                    "/ec2/",
                    "/compute/fz/",
                    "/fz",
                ]
            )
            | hostile_text
        )
    m["attributes"] = draw(
        st.dictionaries(
            attr_name,
            st.fixed_dictionaries(
                {"type": st.sampled_from(["string", "number", "boolean", "integer"])},
                optional={"pattern": pattern, "default": json_value},
            ),
            max_size=3,
        )
    )
    return json.dumps({"mixins": [m]}).encode()


def _text_body(draw) -> bytes:
    lines = [f'Category: compute; scheme="{INFRA}"; class="kind"']
    for _ in range(draw(st.integers(0, 4))):
        field = draw(st.sampled_from(["X-OCCI-Attribute", "Category", "Link", "X-OCCI-Location"]))
        name = draw(attr_name)
        value = draw(hostile_text)
        quoted = draw(st.booleans())
        lines.append(f'{field}: {name}="{value}"' if quoted else f"{field}: {name}={value}")
    if draw(st.booleans()):
        lines.append(
            f'Category: fz; scheme="{SCHEME}"; class="mixin"; '
            f'attributes="{draw(hostile_text)}"; location="{draw(hostile_text)}"'
        )
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def _xml_body(draw) -> bytes:
    name = draw(attr_name).replace('"', "&quot;").replace("<", "&lt;")
    value = draw(hostile_text).replace('"', "&quot;").replace("<", "&lt;")
    return (
        f'<resource xmlns="http://schemas.ogf.org/occi"><kind scheme="{INFRA}" term="compute"/>'
        f'<attribute name="{name}" value="{value}"/></resource>'
    ).encode("utf-8", "surrogatepass")


def _turtle_body(draw) -> bytes:
    name = quote(draw(attr_name).encode("utf-8", "surrogatepass"), safe=".")
    value = json.dumps(draw(hostile_text))  # a JSON string is a Turtle string, \u escapes too
    number = draw(st.sampled_from(["9" * 4400, "1e999", "-0", "0x1"]))
    return (
        "@prefix occi: <http://schemas.ogf.org/occi/rdf#> .\n"
        f"<urn:fz> a occi:Resource ; occi:kind <{INFRA}compute> ;\n"
        f"  <http://schemas.ogf.org/occi/attribute#{name}> {value} ;\n"
        f"  <http://schemas.ogf.org/occi/attribute#occi.compute.cores> {number} .\n"
    ).encode("utf-8", "surrogatepass")


def _jsonld_body(draw) -> bytes:
    doc = {
        "@id": "urn:fz",
        "@type": "http://schemas.ogf.org/occi/rdf#Resource",
        "http://schemas.ogf.org/occi/rdf#kind": {"@id": INFRA + "compute"},
        "http://schemas.ogf.org/occi/attribute#" + draw(attr_name): draw(json_value),
    }
    return json.dumps(doc).encode()


@st.composite
def bodies(draw) -> tuple[bytes, str | None]:
    kind = draw(
        st.sampled_from(["entity", "mixin", "text", "xml", "turtle", "jsonld", "bytes", "none"])
    )
    if kind == "turtle":
        return _turtle_body(draw), "text/turtle"
    if kind == "jsonld":
        return _jsonld_body(draw), "application/ld+json"
    if kind == "entity":
        return _entity_json(draw), JSON
    if kind == "mixin":
        return _mixin_json(draw), JSON
    if kind == "text":
        return _text_body(draw), draw(st.sampled_from(["text/plain", None]))
    if kind == "xml":
        return _xml_body(draw), "application/occi+xml"
    if kind == "bytes":
        return draw(st.binary(max_size=200)), draw(st.sampled_from(CTYPES))
    return b"", None


def _header_value(text: str) -> str:
    """What a WSGI server hands over: UTF-8 bytes read as latin-1, never CR, LF or NUL (gunicorn
    refuses those before any application sees them)."""
    raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("latin-1").replace("\r", "").replace("\n", "").replace("\x00", "")


@st.composite
def requests(draw) -> dict:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]))
    known = ["/compute/", "/-/", "/seeded/", "/compute/fz1", "/", "/x/../", "/compute/./"]
    if draw(st.integers(0, 4)) == 0:  # one in five: a hostile path
        text = draw(hostile_text).encode("utf-8", "surrogatepass")
        path = "/" + quote(text, safe="/")
    else:
        path = draw(st.sampled_from(known + ["/storage/", "/mixin/user/fz/"]))
    accept = draw(st.sampled_from(list(ACCEPTS)))
    headers = {"Accept": accept}
    for name in draw(
        st.lists(
            st.sampled_from(
                [
                    "User-Agent",
                    "X-OCCI-Attribute",
                    "Category",
                    "Link",
                    "X-OCCI-Location",
                    "If-Match",
                ]
            ),
            max_size=3,
            unique=True,
        )
    ):
        headers[name] = _header_value(draw(hostile_text))
    query_pairs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["page", "number", "attribute", "value", "category", "action"]),
                st.one_of(hostile_text, st.sampled_from(["1", "0", str(2**64), "9" * 400])),
            ),
            max_size=3,
        )
    )
    query = "&".join(
        f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in query_pairs
    )
    body, ctype = draw(bodies())
    if ctype:
        headers["Content-Type"] = ctype
    return {"method": method, "path": path, "headers": headers, "query": query, "body": body}


# ---------------------------------------------------------------------- the server under test
def _app(database_url: str):
    app, service = build(
        Settings.from_mapping({"database_url": database_url, "max_body": 65536, "auth": "none"}),
        upgrade=True,
    )
    return testing.TestClient(app), service


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    c, service = _app(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/fuzz.db")
    seed(c)
    yield c
    service.runner.stop()
    service.store.close()


def seed(c) -> None:
    """Something to lose: a compute, and a user mixin with a catastrophic-looking pattern."""
    doc = {"kind": INFRA + "compute", "attributes": {"occi.core.title": "seed"}}
    r = c.simulate_post("/compute/", body=json.dumps(doc), headers={"Content-Type": JSON})
    assert r.status_code == 201, r.text
    mixin = {
        "mixins": [
            {
                "scheme": SCHEME,
                "term": "seed",
                "location": "/seeded/",
                "attributes": {"com.example.x": {"type": "string", "pattern": "(a+)+b"}},
            }
        ]
    }
    r = c.simulate_post("/-/", body=json.dumps(mixin), headers={"Content-Type": JSON})
    assert r.status_code == 200, r.text


def stored(c) -> tuple:
    """What the store holds, as a client sees it: every entity and the user mixins."""
    entities = c.simulate_get("/", headers={"Accept": JSON})
    assert entities.status_code == 200, entities.text
    model = c.simulate_get("/-/", headers={"Accept": JSON})
    assert model.status_code == 200, model.text
    mixins = sorted(m["scheme"] + m["term"] for m in model.json.get("mixins", []))
    return entities.text, mixins


def check(c, req: dict) -> None:
    before = stored(c)
    r = c.simulate_request(
        req["method"],
        req["path"],
        headers=req["headers"],
        query_string=req["query"],
        body=req["body"],
    )
    assert r.status_code < 500, (req, r.status_code, r.text[:300])
    if r.status_code >= 400:
        if req["method"] != "HEAD":
            wanted = ACCEPTS[req["headers"]["Accept"]]
            assert r.headers.get("content-type", "").startswith(wanted), (req, r.headers)
        assert stored(c) == before, req


@FUZZ
@given(req=requests())
def test_hostile_requests_get_a_4xx_in_the_clients_rendering_and_change_nothing(client, req):
    check(client, req)


@FUZZ
@given(
    term=st.sampled_from(["fz", "seed"]) | hostile_text,
    name=attr_name,
    regex=pattern,
    value=st.one_of(hostile_text, st.integers(0, 60).map(lambda n: "a" * n)),
    accept=st.sampled_from(list(ACCEPTS)),
)
def test_mixin_definitions_and_filters_with_odd_names_and_patterns(
    client, term, name, regex, value, accept
):
    """Define a mixin with an odd attribute and pattern, then filter a collection by it."""
    doc = {
        "mixins": [
            {
                "scheme": SCHEME,
                "term": term,
                "attributes": {name: {"type": "string", "pattern": regex}},
            }
        ]
    }
    body = json.dumps(doc).encode()
    check(
        client,
        {
            "method": "POST",
            "path": "/-/",
            "query": "",
            "body": body,
            "headers": {"Accept": accept, "Content-Type": JSON},
        },
    )
    for n in (name, "com.example.x"):
        q = "attribute=" + quote(n.encode("utf-8", "surrogatepass"), safe="")
        q += "&value=" + quote(value.encode("utf-8", "surrogatepass"), safe="")
        check(
            client,
            {
                "method": "GET",
                "path": "/seeded/",
                "query": q,
                "body": b"",
                "headers": {"Accept": accept},
            },
        )
    if term not in ("seed",):
        check(
            client,
            {
                "method": "DELETE",
                "path": "/-/",
                "query": "",
                "body": json.dumps({"mixins": [{"scheme": SCHEME, "term": term}]}).encode(),
                "headers": {"Accept": accept, "Content-Type": JSON},
            },
        )


# ---------------------------------------------------------------------- PostgreSQL: NUL
NUL_CASES = [
    ("POST", "/compute/", JSON, json.dumps({"kind": INFRA + "compute", "title": "a\x00b"}), ""),
    (
        "POST",
        "/compute/",
        JSON,
        json.dumps({"kind": INFRA + "compute", "attributes": {"occi.compute.hostname": "\x00"}}),
        "",
    ),
    (
        "POST",
        "/compute/",
        "text/plain",
        f'Category: compute; scheme="{INFRA}"; class="kind"\n'
        'X-OCCI-Attribute: occi.core.title="x\x00"\n',
        "",
    ),
    (
        "POST",
        "/-/",
        JSON,
        json.dumps({"mixins": [{"scheme": SCHEME, "term": "n", "title": "t\x00"}]}),
        "",
    ),
    ("GET", "/compute/", None, "", "attribute=occi.core.title&value=%00"),
    ("GET", "/compute/%00", None, "", ""),
    ("DELETE", "/compute/a%00b", None, "", ""),
]


@pytest.mark.postgres
@pytest.mark.parametrize("accept", [JSON, "text/plain"])
def test_nul_is_a_4xx_on_postgresql(pg_url, accept):
    c, service = _app(pg_url)
    try:
        seed(c)
        for method, path, ctype, body, query in NUL_CASES:
            headers = {"Accept": accept}
            if ctype:
                headers["Content-Type"] = ctype
            req = {
                "method": method,
                "path": path,
                "headers": headers,
                "query": query,
                "body": body.encode(),
            }
            before = stored(c)
            r = c.simulate_request(
                method, path, headers=headers, query_string=query, body=req["body"]
            )
            assert 400 <= r.status_code < 500, (req, r.status_code, r.text)
            assert r.headers["content-type"].startswith(ACCEPTS[accept]), req
            assert stored(c) == before
    finally:
        service.runner.stop()
        service.store.close()

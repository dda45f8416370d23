"""Hostile input found by fuzzing gets a 4xx in the client's rendering, never a 500, a hung
worker or a changed store: patterns, numbers, nesting, pages, NUL and lone surrogates, attribute
names that would break a header, dot segments and reserved paths, and the per-request limits."""

from __future__ import annotations

import json
import socket

import pytest

from occi.settings import Settings, SettingsError
from rendering import for_media_type
from rendering.base import Context
from tests.api.conftest import INFRA, JSON
from tests.api.test_gunicorn import Server

SCHEME = "http://example.com/occi/fuzz#"
KIND = f'{{"kind": "{INFRA}compute"'
COMPUTE = f'Category: compute; scheme="{INFRA}"; class="kind"\n'


def define_mixin(api, term, attributes=None, **extra):
    doc = {"mixins": [{"scheme": SCHEME, "term": term, "attributes": attributes or {}, **extra}]}
    return api.post("/-/", doc)


def assert_json_error(r, status=400):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(JSON)
    return r.json["error"]["message"]


# ------------------------------------------------------------------ 12: patterns in linear time
def test_a_pattern_with_nested_quantifiers_is_matched_in_linear_time(api):
    assert (
        define_mixin(
            api, "m", {"com.example.x": {"type": "string", "pattern": "(a+)+b"}}
        ).status_code
        == 200
    )
    # a backtracking engine takes 2^34 steps here (the worker hung until gunicorn killed it)
    r = api.get("/mixin/user/m/", headers={"X-OCCI-Attribute": 'com.example.x="' + "a" * 34 + '"'})
    assert "does not match the pattern" in assert_json_error(r)
    r = api.get("/compute/", params={"attribute": "com.example.x", "value": "a" * 34})
    assert "does not match the pattern" in assert_json_error(r)


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)a", r"(?<!b)a"])
def test_patterns_a_linear_engine_cannot_run_are_refused(api, pattern):
    """Back-references and look-around need backtracking: refused when the mixin is defined."""
    r = define_mixin(api, "m", {"com.example.x": {"type": "string", "pattern": pattern}})
    assert "regular expression" in assert_json_error(r)
    assert api.get("/-/", params={"category": "m"}).status_code == 404


# ------------------------------------------------------------------ 13: bounded numbers, depth
def test_a_user_agent_version_of_thousands_of_digits_is_a_400(api):
    r = api.get("/compute/", headers={"User-Agent": "OCCI/" + "9" * 4301 + ".0"})
    assert "OCCI version" in assert_json_error(r)
    assert api.get("/compute/", headers={"User-Agent": "occi-cli OCCI/1.2"}).status_code == 200


def test_an_integer_of_thousands_of_digits_is_a_400_in_every_rendering(api):
    digits = "9" * 4301
    r = api.post(
        "/compute/",
        COMPUTE + f"X-OCCI-Attribute: occi.compute.cores={digits}\n",
        ctype="text/plain",
        accept="text/plain",
    )
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain"), r.text
    body = f'{{"kind": "{INFRA}compute", "attributes": {{"occi.compute.cores": {digits}}}}}'
    assert "occi.compute.cores" in assert_json_error(api.post("/compute/", body, ctype=JSON))
    r = api.post(
        "/compute/", {"kind": INFRA + "compute", "attributes": {"occi.compute.cores": 2**64}}
    )
    assert "64-bit" in assert_json_error(r)
    assert api.count("/compute/") == 0


def test_deeply_nested_brackets_in_a_quoted_text_value_are_a_400(api):
    deep = "[" * 5000 + "]" * 5000
    r = api.post(
        "/compute/",
        COMPUTE + f'X-OCCI-Attribute: occi.core.title="{deep}"\n',
        ctype="text/plain",
        accept="text/plain",
    )
    assert r.status_code == 400 and "nested too deeply" in r.text
    r = api.get("/compute/", headers={"X-OCCI-Attribute": f'occi.core.title="{deep}"'})
    assert "nested too deeply" in assert_json_error(r)


@pytest.mark.parametrize(
    "query",
    ["page=" + "9" * 30, "page=" + str(2**64) + "&number=5", f"page={2**62}&number=50"],
)
def test_a_page_beyond_64_bits_is_a_400(api, query):
    api.create("compute")
    r = api.client.simulate_get("/compute/", query_string=query, headers={"Accept": JSON})
    assert_json_error(r)
    assert api.get("/compute/", params={"page": "2", "number": "5"}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        KIND + ', "attributes": {"occi.core.title": "\\ud800"}}',
        KIND + ', "title": "a\\u0000b"}',
        KIND + ', "attributes": {"com.example\\ud800": "x"}}',
        KIND + ', "mixins": ["http://e.com/x#\\udfff"]}',
    ],
)
def test_lone_surrogates_and_nul_are_a_400_in_json(api, body):
    """In an attribute name the surrogate used to crash the error renderer too: falcon answered
    500 in its own format."""
    assert_json_error(api.post("/compute/", body, ctype=JSON))
    assert api.count("/compute/") == 0


def test_nul_and_surrogates_are_refused_by_the_text_and_xml_parsers(api):
    r = api.post(
        "/compute/",
        COMPUTE + 'X-OCCI-Attribute: occi.core.title="a\x00b"\n',
        ctype="text/plain",
        accept="text/plain",
    )
    assert r.status_code == 400 and "NUL" in r.text
    xml = (
        f'<resource xmlns="http://schemas.ogf.org/occi"><kind scheme="{INFRA}" term="compute"/>'
        '<attribute name="occi.core.title" value="a&#0;b"/></resource>'
    )
    r = api.post("/compute/", xml, ctype="application/occi+xml", accept="application/occi+xml")
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/occi+xml")
    assert api.count("/compute/") == 0


def test_falcon_errors_answer_in_the_negotiated_rendering(api):
    """A Content-Length falcon cannot read (gunicorn passes it on) was a 500."""
    from falcon import testing

    environ = testing.create_environ("/compute/", method="POST", headers={"Accept": JSON})
    environ["CONTENT_LENGTH"] = "abc"
    answer: list = []
    body = b"".join(
        api.client.app(environ, lambda status, headers: answer.extend([status, headers]))
    )
    assert answer[0].startswith("400"), (answer, body)
    assert dict(answer[1])["content-type"].startswith(JSON)
    assert json.loads(body)["error"]["code"] == 400


def test_error_renderers_survive_lone_surrogates_in_messages():
    for mt in (
        "text/plain",
        "text/occi",
        "text/uri-list",
        JSON,
        "application/occi+xml",
        "text/turtle",
        "application/ld+json",
    ):
        r = for_media_type(mt).render_error(400, "Bad Request", "bad \ud800 name", Context())
        body = r.body if isinstance(r.body, bytes) else b"".join(r.body)
        assert b"\\ud800" in body or b"ud800" in body, (mt, body)


@pytest.fixture
def server(tmp_path):
    s = Server(f"sqlite:///{tmp_path}/occi.db", tmp_path, workers=1)
    yield s
    s.stop()


def raw_request(server, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"Content-Length" in b"".join(chunks):
                head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                if len(rest) >= length:
                    break
        return b"".join(chunks)


@pytest.mark.parametrize("chunked", [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXY0\r\n\r\n"])
def test_a_malformed_chunked_body_is_a_400(server, chunked):
    head = (
        b"POST /compute/ HTTP/1.1\r\nHost: x\r\nAccept: application/occi+json\r\n"
        b"Content-Type: application/occi+json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer = raw_request(server, head + chunked)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"application/occi+json" in answer.partition(b"\r\n\r\n")[0]
    assert "Traceback" not in server.output()


# ------------------------------------------------------------------ 14: attribute names
BAD_NAMES = ["a\r\nX-Evil: 1", "Com.Example.x", "com..x", "com.example.", "1abc", "a b", "é"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_mixin_definition_with_a_bad_attribute_name_is_a_400(api, name):
    r = define_mixin(api, "m", {name: {"type": "string"}})
    assert "attribute name" in assert_json_error(r)
    assert api.get("/-/", params={"category": "m"}).status_code == 404


@pytest.mark.parametrize(
    "ctype, body",
    [
        ("text/plain", COMPUTE + "X-OCCI-Attribute: Com.Example.x=1\n"),
        ("text/plain", f'Category: m; scheme="{SCHEME}"; class="mixin"; attributes="Bad.name"\n'),
        (
            "application/occi+xml",
            f'<resource xmlns="http://schemas.ogf.org/occi"><kind scheme="{INFRA}" '
            'term="compute"/><attribute name="Com.Example.x" value="1"/></resource>',
        ),
        (
            "text/turtle",
            f"@prefix occi: <http://schemas.ogf.org/occi/rdf#> .\n"
            f"<urn:x> a occi:Resource ; occi:kind <{INFRA}compute> ;\n"
            f'  <http://schemas.ogf.org/occi/attribute#Com.Example.x> "1" .\n',
        ),
    ],
)
def test_every_parser_refuses_a_malformed_attribute_name(api, ctype, body):
    path = "/-/" if body.startswith("Category: m") else "/compute/"
    r = api.post(path, body, ctype=ctype, accept=JSON)
    assert_json_error(r)
    assert api.count("/compute/") == 0


def test_text_renderers_never_emit_cr_or_lf_in_a_header():
    from occi.model import Resource

    e = Resource(kind=INFRA + "compute", id="x", attributes={"a\r\nx-evil": "v\r\nw"})
    e.location = "/compute/x"
    occi_headers = for_media_type("text/occi").render_entity(e, Context()).headers
    assert all("\r" not in v and "\n" not in v for _, v in occi_headers)
    plain = for_media_type("text/plain").render_entity(e, Context()).body
    assert b"\r" not in plain and b"\nx-evil" not in plain


@pytest.mark.parametrize("scheme", ["http://e.com/x\r\nX-Evil: 1#", "http://e.com/a b#"])
def test_a_mixin_scheme_that_would_break_a_header_is_a_400(api, scheme):
    r = api.post("/-/", {"mixins": [{"scheme": scheme, "term": "m"}]})
    assert "scheme" in assert_json_error(r)


# ------------------------------------------------------------------ 16: paths
def test_dot_segments_in_a_request_path_are_a_400_and_delete_nothing(api):
    api.create("compute")
    for path in ("/x/../", "/compute/./", "/compute/../compute/"):
        assert "segment" in assert_json_error(api.delete(path))
    assert api.count("/compute/") == 1


@pytest.mark.parametrize("location", ["/x/../", "/a/./b/", "/../", "/a/..", "/a\n/b/"])
def test_mixin_locations_with_dot_segments_are_refused(api, location):
    assert_json_error(define_mixin(api, "m", location=location))


@pytest.mark.parametrize(
    "location", ["/-/", "/.well-known/x/", "/healthz/", "/metrics/", "/console/", "/ec2/a/"]
)
def test_user_mixins_cannot_claim_the_servers_own_paths(api, location):
    r = define_mixin(api, "m", location=location)
    assert r.status_code in (400, 409), r.text
    assert "reserved" in r.json["error"]["message"] or r.status_code == 400
    assert api.get("/healthz").status_code == 200


# ------------------------------------------------------------------ 18: limits
@pytest.fixture
def small_settings(tmp_path):
    return Settings.from_mapping(
        {
            "database_url": f"sqlite:///{tmp_path}/api.db",
            "auth": "none",
            "max_headers": "20",
            "max_header_bytes": "2000",
            "max_categories": "3",
            "max_attributes": "4",
            "max_text_parameters": "8",
        }
    )


@pytest.fixture
def small_api(small_settings):
    from falcon import testing

    from occi.api.wsgi import build
    from tests.api.conftest import Api

    app, service = build(small_settings, upgrade=True)
    yield Api(testing.TestClient(app), service)
    service.runner.stop()
    service.store.close()


def test_header_count_and_size_limits(small_api):
    many = {f"X-Extra-{i}": "1" for i in range(25)}
    assert "max_headers" in assert_json_error(small_api.get("/compute/", headers=many))
    big = {"X-Extra": "x" * 2500}
    assert "max_header_bytes" in assert_json_error(small_api.get("/compute/", headers=big))


def test_category_attribute_and_parameter_limits(small_api):
    mixins = [{"scheme": SCHEME, "term": f"m{i}"} for i in range(4)]
    assert "max_categories" in assert_json_error(small_api.post("/-/", {"mixins": mixins}))
    attrs = {f"com.example.a{i}": {"type": "string"} for i in range(5)}
    assert "max_attributes" in assert_json_error(define_mixin(small_api, "m", attrs))
    values = {f"com.example.a{i}": "x" for i in range(5)}
    r = small_api.post("/compute/", {"kind": INFRA + "compute", "attributes": values})
    assert "max_attributes" in assert_json_error(r)
    params = "; ".join(f"p{i}=1" for i in range(10))
    body = f'Category: compute; scheme="{INFRA}"; class="kind"; {params}\n'
    r = small_api.post("/compute/", body, ctype="text/plain")
    assert "max_text_parameters" in assert_json_error(r)
    assert small_api.count("/compute/") == 0
    assert small_api.get("/-/", params={"category": "m0"}).status_code == 404


def test_limit_settings_must_be_positive():
    with pytest.raises(SettingsError):
        Settings.from_mapping({"max_categories": "0"})
    assert Settings.from_mapping({}).max_text_parameters == 64


def test_many_semicolons_are_read_in_linear_time(api):
    """The text parser's parameter queue was quadratic (list.pop(0)); the limit answers first."""
    body = f'Category: compute; scheme="{INFRA}"; class="kind"' + ";x=1" * 15_000 + "\n"
    r = api.post("/compute/", body, ctype="text/plain", accept="text/plain")
    assert r.status_code == 400 and "max_text_parameters" in r.text


def test_json_surrogate_in_filter_query_string(api):
    r = api.client.simulate_get(
        "/compute/", query_string="attribute=occi.core.title&value=%00", headers={"Accept": JSON}
    )
    assert "NUL" in assert_json_error(r)
    assert json.loads(api.get("/compute/").text) is not None


@pytest.mark.parametrize("path", [b"/x/../", b"/compute/%2e%2e/", b"/compute/./"])
def test_gunicorn_passes_dot_segments_through_and_they_get_a_400(server, path):
    answer = raw_request(
        server, b"DELETE " + path + b" HTTP/1.1\r\nHost: x\r\nAccept: application/occi+json\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"segment" in answer


def test_every_pattern_of_the_servers_model_runs_on_the_linear_engine(api):
    from occi.model import compile_pattern

    reg = api.service.registry()
    patterns = [
        d.pattern for c in reg.collection() for d in c.attributes.values() if d.pattern is not None
    ]
    assert patterns
    for p in patterns:
        compile_pattern(p)

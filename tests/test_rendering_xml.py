"""The XML rendering (application/occi+xml): golden renderings valid against schemas/occi.xsd,
parsing of draft and erocci shapes, and hostile documents refused before anything is read.

Regenerate the golden files with `OCCI_REGEN_GOLDEN=1 pytest tests/test_rendering_xml.py`.
"""

from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path

import pytest
from lxml import etree

from occi import infrastructure as infra
from occi.model import ENUM, INTEGER, NUMBER, ActionInvocation, Link, Mixin, Resource
from occi.registry import Registry
from rendering import for_media_type
from rendering.base import Context, Message, ParseError
from rendering.schema_validation import xml_errors
from rendering.xml_rendering import XmlRendering
from tests.test_rendering_json import compute, storage, storagelink

DATA = Path(__file__).parent / "data" / "xml"
BASE = "http://localhost:8080"
CTX = Context(BASE)
R = XmlRendering()
REGEN = os.environ.get("OCCI_REGEN_GOLDEN") == "1"
NS = "{http://schemas.ogf.org/occi}"
OCCI = 'xmlns="http://schemas.ogf.org/occi"'


def body_of(rendered) -> bytes:
    b = rendered.body
    return b if isinstance(b, bytes) else b"".join(b)


def msg(body: bytes | str, base: str = BASE) -> Message:
    if isinstance(body, str):
        body = body.encode("utf-8")
    return Message(headers={"content-type": "application/occi+xml"}, body=body, base_url=base)


def check_golden(name: str, rendered) -> etree._Element:
    assert rendered.content_type == "application/occi+xml"
    raw = body_of(rendered)
    root = etree.fromstring(raw)
    assert xml_errors(root) == [], f"{name} does not validate against schemas/occi.xsd"
    path = DATA / name
    if REGEN:
        path.write_bytes(raw)
    assert path.exists(), f"no golden file {name}: run with OCCI_REGEN_GOLDEN=1"
    assert raw == path.read_bytes(), f"differs from golden {name}"
    return root


# ------------------------------------------------------------------ golden renderings
def test_golden_query_interface():
    root = check_golden("query_interface.xml", R.render_categories(Registry().collection(), CTX))
    assert root.tag == NS + "capabilities"
    compute_kind = root.find(f"{NS}kind[@term='compute']")
    assert compute_kind.get("location") == "/compute/"
    assert compute_kind.find(f"{NS}parent").get("term") == "resource"
    cores = compute_kind.find(f"{NS}attribute[@name='occi.compute.cores']")
    assert cores.get("type") == "xs:integer" and cores.get("default") == "1"
    arch = compute_kind.find(f"{NS}attribute[@name='occi.compute.architecture']")
    values = [e.get("value") for e in arch.iter("{http://www.w3.org/2001/XMLSchema}enumeration")]
    assert values == ["x86", "x64"]
    state = compute_kind.find(f"{NS}attribute[@name='occi.compute.state']")
    assert state.get("immutable") == "true"
    stop = root.find(f"{NS}action[@term='stop']")
    assert stop.find(f"{NS}attribute[@name='method']") is not None


def test_golden_compute_with_inline_link():
    root = check_golden("compute.xml", R.render_entity(compute(), CTX))
    assert root.get("href") == BASE + "/compute/c-1" and root.get("id") == "c-1"
    assert root.find(f"{NS}summary").text == "the front end"
    cores = root.find(f"{NS}attribute[@name='occi.compute.cores']")
    assert (cores.get("value"), cores.get("type")) == ("2", "xs:integer")
    assert root.find(f"{NS}attribute[@name='occi.compute.state.message']") is None
    link = root.find(f"{NS}link")
    assert (link.get("source"), link.get("target")) == ("/compute/c-1", "/network/n-1")
    assert [a.get("term") for a in root.findall(f"{NS}action")] == [
        "stop",
        "restart",
        "suspend",
        "save",
    ]


def test_golden_link_collection_locations_error_mixin_ok():
    check_golden("link.xml", R.render_entity(storagelink(), CTX))
    root = check_golden(
        "collection.xml", R.render_entities([storage(1), storagelink(), storage(2)], CTX)
    )
    assert [c.tag.rpartition("}")[2] for c in root] == ["resource", "link", "resource"]
    check_golden("locations.xml", R.render_locations(["/compute/a", "/storage/b"], CTX))
    err = check_golden(
        "error.xml", R.render_error(400, "Bad Request", "cores < 1", CTX, "bad_request")
    )
    assert err.get("code") == "400" and err.text == "cores < 1"
    check_golden("mixin_small.xml", R.render_mixin(infra.CRTP_TEMPLATES[0], CTX))
    check_golden("ok.xml", R.render_ok(CTX))


def test_streamed_collection_is_valid_and_chunked():
    rendered = R.render_entities((storage(i) for i in range(2000)), CTX)
    assert not isinstance(rendered.body, bytes)
    chunks = list(rendered.body)
    assert len(chunks) > 5 and max(len(c) for c in chunks) < 64 * 1024
    root = etree.fromstring(b"".join(chunks))
    assert xml_errors(root) == [] and len(root) == 2000
    assert b"".join(body_of(R.render_entities([], CTX)).split()) == (
        b"<?xmlversion='1.0'encoding='utf-8'?><collectionxmlns=\"http://schemas.ogf.org/occi\""
        b'xmlns:xs="http://www.w3.org/2001/XMLSchema"></collection>'
    )


def test_media_types_registered():
    assert for_media_type("application/occi+xml") is for_media_type("application/xml")
    assert R.media_types[0] == "application/occi+xml"


def test_invalid_xml_characters_are_replaced():
    res = Resource(kind=infra.COMPUTE.id, id="x", title="bell\x07")
    root = etree.fromstring(body_of(R.render_entity(res, CTX)))
    assert root.get("title") == "bell\ufffd"


# ------------------------------------------------------------------ round trips
def test_roundtrip_entities():
    for original in (compute(), storagelink()):
        (parsed,) = R.parse_entities(msg(body_of(R.render_entity(original, CTX))))
        assert type(parsed) is type(original)
        for f in ("kind", "id", "title", "mixins", "attributes"):
            expected = getattr(original, f)
            if f == "attributes":
                expected = {k: v for k, v in expected.items() if v is not None}
            assert getattr(parsed, f) == expected, f
    (res,) = R.parse_entities(msg(body_of(R.render_entity(compute(), CTX))))
    assert res.summary == "the front end"
    link = res.links[0]
    assert (link.location, link.source_kind, link.target_kind) == (
        "/link/networkinterface/nic-1",
        infra.COMPUTE.id,
        infra.NETWORK.id,
    )


def test_roundtrip_categories():
    coll = Registry().collection()
    refs = R.parse_categories(msg(body_of(R.render_categories(coll, CTX))))
    assert [r.id for r in refs] == [c.id for c in coll]
    by_id = {r.id: r for r in refs}
    assert by_id[infra.COMPUTE.id].attributes == infra.COMPUTE.all_attributes()
    assert by_id[infra.COMPUTE.id].rel == [infra.RESOURCE.id]
    small = by_id[infra.CRTP_TEMPLATES[0].id]
    assert small.rel == [infra.RESOURCE_TPL.id] and small.applies == [infra.COMPUTE.id]
    assert small.attributes == dict(infra.CRTP_TEMPLATES[0].attributes)
    assert by_id[infra.STOP.id].attributes == dict(infra.STOP.attributes)


def test_roundtrip_locations_and_action():
    assert R.parse_locations(msg(body_of(R.render_locations(["/compute/a"], CTX)))) == [
        "/compute/a"
    ]


# ------------------------------------------------------------------ parsing peers' shapes
def test_parse_draft_action_invocation():
    doc = f"""<action {OCCI} term="stop"
      scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#" >
        <attribute name="method" value="graceful" />
    </action>"""
    assert R.parse_action(msg(doc)) == ActionInvocation(infra.STOP.id, {"method": "graceful"})
    assert R.parse_action(msg(b"")) == ActionInvocation(None)


def test_parse_erocci_entities():
    doc = f"""<?xml version="1.0" encoding="UTF-8"?>
    <resource {OCCI} id="compute1">
      <kind scheme="http://schemas.ogf.org/occi/infrastructure#" term="compute" />
      <attribute name="occi.core.summary" value="A super computer" />
      <attribute name="occi.compute.cores" value="45" />
      <attribute name="occi.compute.speed" value="1.5" />
      <link id="mylink1" target="http://example.org/another_resource1" >
        <kind scheme="http://schemas.ogf.org/occi/core#" term="link" />
      </link>
      <action scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#" term="stop"/>
    </resource>"""
    (res,) = R.parse_entities(msg(doc))
    assert res.id == "compute1" and res.summary == "A super computer"
    assert res.attributes == {"occi.compute.cores": "45", "occi.compute.speed": "1.5"}
    assert res.links[0].target == "http://example.org/another_resource1"
    assert res.actions == []
    netif = f"""<link {OCCI} id="netif1" source="{BASE}/compute1" target="/network1">
      <kind scheme="http://schemas.ogf.org/occi/infrastructure#" term="networkinterface" />
      <mixin scheme="http://schemas.ogf.org/occi/infrastructure/networkinterface#"
             term="ipnetworkinterface" />
      <attribute name="occi.networkinterface.mac" value="00:11:22:33:44:55" />
      <attribute name="occi.core.target.kind"
                 value="http://schemas.ogf.org/occi/infrastructure#network"/>
    </link>"""
    (link,) = R.parse_entities(msg(netif))
    assert isinstance(link, Link) and (link.source, link.target) == ("/compute1", "/network1")
    assert link.target_kind == infra.NETWORK.id and link.mixins == [infra.IPNETWORKINTERFACE.id]
    assert link.attributes == {"occi.networkinterface.mac": "00:11:22:33:44:55"}


def test_parse_without_namespace_and_collection():
    doc = """<collection><resource><kind scheme="http://schemas.ogf.org/occi/infrastructure#"
      term="storage"/><attribute name="occi.storage.size" value="2.5" type="xs:double"
      xmlns:xs="http://www.w3.org/2001/XMLSchema"/></resource>
      <link source="/a" target="/b"/></collection>"""
    res, link = R.parse_entities(msg(doc))
    assert res.attributes == {"occi.storage.size": 2.5} and isinstance(link, Link)


def test_parse_erocci_capabilities_and_user_mixin():
    doc = f"""<capabilities {OCCI} xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <kind term="compute" scheme="http://schemas.ogf.org/occi/infrastructure#"
            title="Compute Resource" location="{BASE}/categories/compute">
        <parent scheme="http://schemas.ogf.org/occi/core#" term="resource"/>
        <attribute name="occi.compute.architecture">
          <xs:restriction base="xs:string">
            <xs:enumeration value="x64"/><xs:enumeration value="x86"/>
          </xs:restriction>
        </attribute>
        <attribute name="occi.compute.cores" type="xs:integer"/>
        <attribute name="occi.compute.speed" type="xs:float" immutable="true" use="required"/>
        <action term="stop" scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#">
          <attribute name="method" type="xs:string"/>
        </action>
      </kind>
      <mixin term="debian6" scheme="http://occi.example.org/occi/infrastructure/os_tpl#"
             location="{BASE}/categories/debian6">
        <depends scheme="http://schemas.ogf.org/occi/infrastructure#" term="os_tpl"/>
      </mixin>
    </capabilities>"""
    kind, mixin = R.parse_categories(msg(doc))
    assert kind.cls == "kind" and kind.location == "/categories/compute"
    assert kind.rel == [infra.RESOURCE.id]
    a = kind.attributes
    assert a["occi.compute.architecture"].type == ENUM
    assert a["occi.compute.architecture"].enum == ("x64", "x86")
    assert a["occi.compute.cores"].type == INTEGER and a["occi.compute.cores"].mutable
    assert a["occi.compute.speed"].type == NUMBER and not a["occi.compute.speed"].mutable
    assert a["occi.compute.speed"].required
    assert mixin.cls == "mixin" and mixin.rel == [infra.OS_TPL.id]
    user = f"""<mixin {OCCI} scheme="http://schemas.example.org/occi#" term="mymixin0"
                 location="http://localhost:8080/categories/mymixin0" />"""
    (ref,) = R.parse_categories(msg(user))
    assert (ref.cls, ref.term, ref.location) == ("mixin", "mymixin0", "/categories/mymixin0")


def test_parse_bulk_association_forms():
    erocci = f"""<collection {OCCI}><resource href="{BASE}/compute/a"/>
                 <resource href="/compute/b"/></collection>"""
    assert R.parse_locations(msg(erocci)) == ["/compute/a", "/compute/b"]
    own = f"<locations {OCCI}><location>{BASE}/compute/a</location></locations>"
    assert R.parse_locations(msg(own)) == ["/compute/a"]


def test_user_mixin_roundtrip():
    m = Mixin(
        "http://localhost:8080/occi/tags#",
        "blue",
        "Blue things",
        location="/mixin/tags/blue/",
        user_defined=True,
    )
    (ref,) = R.parse_categories(msg(body_of(R.render_mixin(m, CTX))))
    assert (ref.id, ref.cls, ref.location, ref.title) == (m.id, "mixin", m.location, m.title)


# ------------------------------------------------------------------ errors with a path
@pytest.mark.parametrize(
    "doc, message",
    [
        (f"<resource {OCCI}><kind term='x'/></resource>", r"kind.*scheme"),
        (f"<resource {OCCI}><kind scheme='s#' term='x'/><colour/></resource>", r"colour"),
        (f"<resource {OCCI}><attribute value='1'/></resource>", r"/resource/attribute.*name"),
        (
            f"<resource {OCCI}><attribute name='a' value='x' type='xs:integer' "
            "xmlns:xs='http://www.w3.org/2001/XMLSchema'/></resource>",
            r"attribute\[@name='a'\].*integer",
        ),
        ("<resource", r"not well-formed XML"),
        (f"<capabilities {OCCI}/>", r"<capabilities> document, but an entity"),
        (b"\xff\xfe<\x00", r"not well-formed|XML"),
    ],
)
def test_bad_documents(doc, message):
    with pytest.raises(ParseError, match=message):
        R.parse_entities(msg(doc))


def test_validation_error_names_the_element():
    with pytest.raises(ParseError) as info:
        R.parse_categories(msg(f"<mixin {OCCI} scheme='s#' term='t'><depends/></mixin>"))
    text = str(info.value)
    assert "occi.xsd" in text and "/mixin[@term='t']/depends" in text and "scheme" in text


# ------------------------------------------------------------------ hostile XML
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<resource xmlns="http://schemas.ogf.org/occi" title="&lol9;">
  <kind scheme="http://schemas.ogf.org/occi/infrastructure#" term="compute"/>
</resource>"""


def external_entity(uri: str) -> bytes:
    return f"""<?xml version="1.0"?>
<!DOCTYPE resource [ <!ENTITY xxe SYSTEM "{uri}"> ]>
<resource xmlns="http://schemas.ogf.org/occi" title="&xxe;">
  <kind scheme="http://schemas.ogf.org/occi/infrastructure#" term="compute"/>
</resource>""".encode()


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<!ENTITY x 'pwned'>")

    def log_message(self, *args):
        pass


@pytest.fixture
def http_recorder():
    _Recorder.hits = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Recorder.hits
    server.shutdown()
    server.server_close()


def _every_parser(body: bytes):
    for parse in (R.parse_entities, R.parse_categories, R.parse_action, R.parse_locations):
        with pytest.raises(ParseError) as info:
            parse(msg(body))
        yield str(info.value)


def test_billion_laughs_refused():
    for message in _every_parser(BILLION_LAUGHS):
        assert "DOCTYPE" in message and "lol" not in message


def test_external_file_entity_refused_and_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    for message in _every_parser(external_entity(secret.as_uri())):
        assert "TOP-SECRET-CONTENT" not in message


def test_external_url_entity_refused_and_not_fetched(http_recorder):
    url, hits = http_recorder
    for _ in _every_parser(external_entity(url + "/evil.dtd")):
        pass
    # an external DTD subset and a schemaLocation hint must not be fetched either
    dtd = f'<?xml version="1.0"?><!DOCTYPE resource SYSTEM "{url}/dtd"><resource {OCCI}/>'
    hint = (
        f'<resource {OCCI} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="http://schemas.ogf.org/occi {url}/occi.xsd">'
        '<kind scheme="http://schemas.ogf.org/occi/infrastructure#" term="compute"/>'
        "</resource>"
    )
    list(_every_parser(dtd.encode()))
    (res,) = R.parse_entities(msg(hint))  # the hint is allowed, and ignored
    assert res.kind == infra.COMPUTE.id
    xinclude = (
        f'<resource {OCCI} xmlns:xi="http://www.w3.org/2001/XInclude">'
        f'<xi:include href="{url}/inc"/></resource>'
    )
    with pytest.raises(ParseError):
        R.parse_entities(msg(xinclude))
    assert hits == []


def test_utf16_doctype_refused():
    body = (
        external_entity("file:///etc/passwd")
        .decode()
        .replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
        .encode("utf-16")
    )
    for message in _every_parser(body):
        assert "root:" not in message


def test_deep_nesting_refused():
    deep = f"<resource {OCCI}>" + "<summary>" * 100 + "</summary>" * 100 + "</resource>"
    with pytest.raises(ParseError, match="nested too deeply"):
        R.parse_entities(msg(deep))
    absurd = b"<a>" * 100_000 + b"</a>" * 100_000
    with pytest.raises(ParseError, match="nested too deeply"):
        R.parse_entities(msg(absurd))

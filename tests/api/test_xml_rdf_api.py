"""The OCCI lifecycle in XML, Turtle and JSON-LD through the real app (SQLite + simulator):
discover, create with templates and an inline link, act, update, delete; hostile XML refused
with nothing stored. Every XML response validates against schemas/occi.xsd, every JSON response
against the JSON schema, every RDF response parses."""

from __future__ import annotations

import json

import pytest
from lxml import etree
from rdflib import Graph, URIRef

from rendering.schema_validation import json_errors, xml_errors
from tests.api.conftest import INFRA, JSON
from tests.test_rendering_xml import BILLION_LAUGHS, external_entity

CRTP = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"
ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
#: the zone every compute is placed in (the embedded one-cluster shorthand's)
ZONE = "http://occi.simulator.local/availability_zone#default"
XML = "application/occi+xml"
TURTLE = "text/turtle"
JSONLD = "application/ld+json"
NS = "{http://schemas.ogf.org/occi}"
OCCI_RDF = "http://schemas.ogf.org/occi/rdf#"
ATTR = "http://schemas.ogf.org/occi/attribute#"
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
RDF_FORMATS = {TURTLE: "turtle", JSONLD: "json-ld", "application/rdf+xml": "xml"}


def check_response(r) -> None:
    """The response document fits its schema (XML, JSON) or parses (RDF)."""
    ctype = (r.headers.get("content-type") or "").split(";")[0].strip()
    if r.status_code == 204 or not r.content:
        return
    if ctype == XML:
        errors = xml_errors(etree.fromstring(r.content))
        assert errors == [], f"emitted XML does not validate: {errors}\n{r.text[:500]}"
    elif ctype == JSON:
        errors = json_errors(json.loads(r.content))
        assert errors == [], f"emitted JSON does not validate: {errors}\n{r.text[:500]}"
    elif ctype in RDF_FORMATS:
        Graph().parse(data=r.content, format=RDF_FORMATS[ctype])


@pytest.fixture
def checked(api):
    """The api fixture with every response checked against its schema."""
    original = api.request

    def request(*args, **kw):
        r = original(*args, **kw)
        check_response(r)
        return r

    api.request = request
    return api


def os_template(api) -> str:
    """An os_tpl offered by the backend, found in the JSON query interface."""
    doc = api.get("/-/").json
    return next(m["scheme"] + m["term"] for m in doc["mixins"] if INFRA + "os_tpl" in m["depends"])


def state(api, path) -> dict:
    r = api.get(path)
    assert r.status_code == 200, r.text
    return r.json["attributes"]


# ================================================================== XML
def xml_ref(tag: str, type_id: str) -> str:
    scheme, _, term = type_id.rpartition("#")
    return f'<{tag} scheme="{scheme}#" term="{term}"/>'


def test_lifecycle_in_xml(checked):
    xml_lifecycle(checked, "http://falconframework.org")


def xml_lifecycle(api, root_url: str) -> None:
    r = api.get("/-/", accept=XML)
    assert r.status_code == 200 and r.headers["content-type"].startswith(XML)
    caps = etree.fromstring(r.content)
    os_tpls = [
        m.get("scheme") + m.get("term")
        for m in caps.findall(f"{NS}mixin")
        if any(d.get("term") == "os_tpl" for d in m.findall(f"{NS}depends"))
    ]
    assert os_tpls and CRTP + "small" in {
        m.get("scheme") + m.get("term") for m in caps.findall(f"{NS}mixin")
    }
    os_tpl = os_tpls[0]

    net = f'<resource xmlns="http://schemas.ogf.org/occi">{xml_ref("kind", INFRA + "network")}</resource>'
    r = api.post("/network/", body=net, ctype=XML, accept=XML)
    assert r.status_code == 201, r.text
    net_path = api.path_of(r)

    body = f"""<?xml version="1.0"?>
    <resource xmlns="http://schemas.ogf.org/occi" title="web">
      {xml_ref("kind", INFRA + "compute")}
      {xml_ref("mixin", CRTP + "small")}
      {xml_ref("mixin", os_tpl)}
      <attribute name="occi.compute.hostname" value="web1"/>
      <link target="{net_path}">{xml_ref("kind", INFRA + "networkinterface")}</link>
    </resource>"""
    r = api.post("/compute/", body=body, ctype=XML, accept=XML)
    assert r.status.startswith("201"), r.text
    path = api.path_of(r)
    created = etree.fromstring(r.content)
    assert created.get("title") == "web"
    cores = created.find(f"{NS}attribute[@name='occi.compute.cores']")
    assert (cores.get("value"), cores.get("type")) == ("1", "xs:integer")
    (link,) = created.findall(f"{NS}link")
    assert link.get("target") == net_path
    assert link.find(f"{NS}attribute[@name='occi.networkinterface.mac']").get("value")
    assert {a.get("term") for a in created.findall(f"{NS}action")} >= {"start"}

    action = f'<action xmlns="http://schemas.ogf.org/occi" scheme="{ACTION}" term="start"/>'
    r = api.post(path, body=action, ctype=XML, accept=XML, params={"action": "start"})
    assert r.status_code == 200, r.text
    assert state(api, path)["occi.compute.state"] == "active"

    update = (
        '<resource xmlns="http://schemas.ogf.org/occi">'
        '<attribute name="occi.compute.hostname" value="web2"/></resource>'
    )
    r = api.post(path, body=update, ctype=XML, accept=XML)
    assert r.status_code == 200, r.text
    a = state(api, path)
    assert a["occi.compute.hostname"] == "web2" and a["occi.compute.cores"] == 1

    listing = etree.fromstring(api.get("/compute/", accept=XML).content)
    assert root_url + path in [e.get("href") for e in listing]

    r = api.delete(path, accept=XML)
    assert r.status_code == 200 and etree.fromstring(r.content).tag == NS + "ok"
    r = api.get(path, accept=XML)
    assert r.status_code == 404
    err = etree.fromstring(r.content)
    assert err.tag == NS + "error" and err.get("code") == "404" and err.text


def test_xml_user_mixin_and_bulk_association(checked):
    api = checked
    mixin = (
        '<mixin xmlns="http://schemas.ogf.org/occi" scheme="http://example.com/tags#" '
        'term="blue" title="Blue" location="/tags/blue/"/>'
    )
    r = api.post("/-/", body=mixin, ctype=XML, accept=XML)
    assert r.status_code == 200, r.text
    path = api.path_of(api.create("compute"))
    bulk = f'<collection xmlns="http://schemas.ogf.org/occi"><resource href="{path}"/></collection>'
    r = api.post("/tags/blue/", body=bulk, ctype=XML, accept=XML)
    assert r.status_code == 200, r.text
    assert "http://example.com/tags#blue" in api.get(path).json["mixins"]
    r = api.get("/-/", accept=XML, params={"category": "blue"})
    assert r.status_code == 200


@pytest.mark.parametrize("name", ["billion_laughs", "file_entity", "deep", "invalid"])
def test_hostile_or_invalid_xml_is_400_and_nothing_stored(checked, tmp_path, name):
    hostile_xml(checked, tmp_path, name)


def hostile_xml(api, tmp_path, name: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    bodies = {
        "billion_laughs": BILLION_LAUGHS,
        "file_entity": external_entity(secret.as_uri()),
        "deep": b'<resource xmlns="http://schemas.ogf.org/occi">'
        + b"<summary>" * 80
        + b"</summary>" * 80
        + b"</resource>",
        "invalid": b'<resource xmlns="http://schemas.ogf.org/occi"><kind term="compute"/></resource>',
    }
    before = api.count("/compute/")
    r = api.post("/compute/", body=bodies[name], ctype=XML, accept=XML)
    assert r.status_code == 400, r.text
    assert "TOP-SECRET-CONTENT" not in r.text
    assert etree.fromstring(r.content).tag == NS + "error"
    assert api.count("/compute/") == before


def test_accept_lists_new_media_types_and_406_still_holds(checked):
    api = checked
    r = api.get("/-/")
    for mt in (XML, "application/xml", TURTLE, JSONLD, "application/rdf+xml"):
        assert mt in r.headers["accept"]
    assert api.get("/-/", accept="application/rdf+xml").status_code == 200
    assert api.get("/-/", accept="image/png").status_code == 406
    assert api.get("/-/", accept="application/xml").headers["content-type"].startswith(XML)


# ================================================================== Turtle and JSON-LD
def turtle_create(os_tpl: str, net_url: str) -> str:
    return f"""
@prefix occi: <{OCCI_RDF}> .
@prefix attr: <{ATTR}> .
@prefix infra: <{INFRA}> .
[] a infra:compute, <{CRTP}small>, <{os_tpl}> ;
   occi:title "web" ;
   attr:occi.compute.hostname "web1" ;
   occi:link [ occi:kind infra:networkinterface ; occi:target <{net_url}> ] .
"""


def jsonld_create(os_tpl: str, net_url: str) -> str:
    return json.dumps(
        {
            "@context": {"occi": OCCI_RDF, "attr": ATTR, "infra": INFRA},
            "@type": ["infra:compute", CRTP + "small", os_tpl],
            "occi:title": "web",
            "attr:occi.compute.hostname": "web1",
            "occi:link": {
                "occi:kind": {"@id": "infra:networkinterface"},
                "occi:target": {"@id": net_url},
            },
        }
    )


BODIES = {
    TURTLE: {
        "network": f"[] a <{INFRA}network> .",
        "create": turtle_create,
        "action": f"[] a <{OCCI_RDF}ActionInvocation> ; <{OCCI_RDF}action> <{ACTION}start> .",
        "update": f'[] <{ATTR}occi.compute.hostname> "web2" .',
    },
    JSONLD: {
        "network": json.dumps({"@type": INFRA + "network"}),
        "create": jsonld_create,
        "action": json.dumps(
            {"@type": OCCI_RDF + "ActionInvocation", OCCI_RDF + "action": {"@id": ACTION + "start"}}
        ),
        "update": json.dumps({ATTR + "occi.compute.hostname": "web2"}),
    },
}


@pytest.mark.parametrize("mt", [TURTLE, JSONLD])
def test_lifecycle_in_rdf(checked, mt):
    rdf_lifecycle(checked, mt)


def rdf_lifecycle(api, mt: str) -> None:
    fmt = RDF_FORMATS[mt]
    r = api.get("/-/", accept=mt)
    assert r.status_code == 200 and r.headers["content-type"].startswith(mt)
    model = Graph().parse(data=r.content, format=fmt)
    found = model.query(f"""
        PREFIX occi: <{OCCI_RDF}>
        SELECT ?m WHERE {{ ?m a occi:Mixin ; occi:depends <{INFRA}os_tpl> }}""")
    os_tpl = str(next(iter(found))[0])
    compute = URIRef(INFRA + "compute")
    assert (
        compute,
        URIRef("http://www.w3.org/2000/01/rdf-schema#subClassOf"),
        URIRef("http://schemas.ogf.org/occi/core#resource"),
    ) in model

    r = api.post("/network/", body=BODIES[mt]["network"], ctype=mt, accept=mt)
    assert r.status_code == 201, r.text
    net_url = r.headers["location"]
    net_path = api.path_of(r)

    r = api.post("/compute/", body=BODIES[mt]["create"](os_tpl, net_url), ctype=mt, accept=mt)
    assert r.status_code == 201, r.text
    path = api.path_of(r)
    g = Graph().parse(data=r.content, format=fmt)
    node = URIRef(r.headers["location"])
    assert (node, URIRef(f"{OCCI_RDF}kind"), compute) in g
    assert int(g.value(node, URIRef(ATTR + "occi.compute.cores"))) == 1
    link = g.value(node, URIRef(OCCI_RDF + "link"))
    assert g.value(link, URIRef(OCCI_RDF + "target")) == URIRef(net_url)
    doc = api.get(path).json
    assert doc["title"] == "web" and set(doc["mixins"]) == {CRTP + "small", os_tpl, ZONE}
    assert doc["links"][0]["target"]["location"] == net_path

    r = api.post(path, body=BODIES[mt]["action"], ctype=mt, accept=mt, params={"action": "start"})
    assert r.status_code == 200, r.text
    assert state(api, path)["occi.compute.state"] == "active"

    r = api.post(path, body=BODIES[mt]["update"], ctype=mt, accept=mt)
    assert r.status_code == 200, r.text
    assert state(api, path)["occi.compute.hostname"] == "web2"

    coll = Graph().parse(data=api.get("/compute/", accept=mt).content, format=fmt)
    assert (node, URIRef(f"{OCCI_RDF}kind"), compute) in coll

    r = api.delete(path, accept=mt)
    assert r.status_code == 200
    r = api.get(path, accept=mt)
    assert r.status_code == 404
    err = Graph().parse(data=r.content, format=fmt)
    assert int(next(iter(err.objects(None, URIRef(OCCI_RDF + "code"))))) == 404


def test_bad_rdf_bodies_are_400(checked):
    api = checked
    before = api.count("/compute/")
    r = api.post("/compute/", body="[] a <broken", ctype=TURTLE, accept=TURTLE)
    assert r.status_code == 400
    remote = json.dumps({"@context": "http://127.0.0.1:9/ctx.jsonld", "@type": "x"})
    r = api.post("/compute/", body=remote, ctype=JSONLD, accept=JSON)
    assert r.status_code == 400 and "remote context" in r.json["error"]["message"]
    r = api.post("/compute/", body=BILLION_LAUGHS, ctype="application/rdf+xml", accept=JSON)
    assert r.status_code == 400 and "DOCTYPE" in r.json["error"]["message"]
    assert api.count("/compute/") == before


# ================================================================== JSON responses validate
def test_sample_of_json_calls_validate(checked):
    api = checked
    net = api.path_of(api.create("network"))
    r = api.create(
        "compute",
        {"occi.compute.hostname": "j"},
        mixins=[CRTP + "small"],
        links=[{"kind": INFRA + "networkinterface", "target": {"location": net}}],
    )
    path = api.path_of(r)
    api.get(path)
    api.get("/compute/")
    api.get("/link/networkinterface/")
    api.post(path, {"action": ACTION + "start"}, params={"action": "start"})
    api.post(path, {"attributes": {"occi.compute.hostname": "k"}})
    r = api.post(path, {"kind": INFRA + "compute", "actions": [1]})
    assert r.status_code == 400 and "actions[0]" in r.json["error"]["message"]
    r = api.post("/compute/", {"kind": INFRA + "compute", "colour": "red"})
    assert r.status_code == 400 and "colour" in r.json["error"]["message"]
    api.post(path, None, params={"action": "fly"})
    api.delete(path)
    api.get(path)


# ================================================================== against a live server
class _LiveResult:
    """A requests response with the attributes of falcon's test Result used above."""

    def __init__(self, r):
        self._r = r
        self.status_code = r.status_code
        self.status = f"{r.status_code} {r.reason}"
        self.headers = r.headers
        self.content = r.content
        self.text = r.text

    @property
    def json(self):
        return self._r.json()


class _LiveApi:
    """The Api interface of tests.api.conftest over real HTTP, every response checked."""

    def __init__(self, url: str):
        self.url = url

    def request(
        self, method, path, *, body=None, headers=None, accept=JSON, ctype=None, params=None
    ):
        import requests

        h = {"Accept": accept} if accept else {}
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            ctype = ctype or JSON
        if isinstance(body, str):
            body = body.encode("utf-8")
        if ctype:
            h["Content-Type"] = ctype
        h.update(headers or {})
        r = _LiveResult(
            requests.request(
                method, self.url + path, data=body, headers=h, params=params, timeout=30
            )
        )
        check_response(r)
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body=body, **kw)

    def create(self, kind, attributes=None, mixins=(), links=(), **extra):
        doc = {"kind": INFRA + kind, "attributes": attributes or {}, "mixins": list(mixins)}
        r = self.post(f"/{kind}/", doc)
        assert r.status_code == 201, r.text
        return r

    def path_of(self, response) -> str:
        from urllib.parse import urlsplit

        return urlsplit(response.headers["location"]).path

    def count(self, collection: str) -> int:
        doc = self.get(collection).json
        return len(doc.get("resources", [])) + len(doc.get("links", []))


@pytest.fixture
def live_server(tmp_path):
    from tests.api.test_gunicorn import Server

    srv = Server(f"sqlite:///{tmp_path}/occi.db", tmp_path, workers=2)
    yield srv
    srv.stop()


@pytest.mark.server
def test_lifecycles_against_live_server(live_server, tmp_path):
    """The same lifecycles over real HTTP against gunicorn (SQLite, simulator)."""
    live = _LiveApi(live_server.url)
    xml_lifecycle(live, live_server.url)
    for mt in (TURTLE, JSONLD):
        rdf_lifecycle(live, mt)
    for name in ("billion_laughs", "file_entity", "deep", "invalid"):
        hostile_xml(live, tmp_path, name)

"""Tests of the text renderings (text/plain, text/occi, text/uri-list).

Golden files live in tests/data/text/; regenerate them with OCCI_REGEN_GOLDEN=1 and review the
diff before committing. Request fixtures (*.request.txt) are verbatim spec or rOCCI examples.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from occi import infrastructure as infra
from occi.model import (
    ActionInvocation,
    CategoryCollection,
    Link,
    Mixin,
    Resource,
)
from occi.registry import Registry
from rendering.base import Context, Message, ParseError, Rendered, Unrenderable
from rendering.text import TextOcci, TextPlain, UriList

DATA = Path(__file__).parent / "data" / "text"
BASE = "http://example.com"
CTX = Context(BASE)
PLAIN = TextPlain()
OCCI = TextOcci()
URILIST = UriList()

COMPUTE_ACTIONS = [a.id for a in infra.COMPUTE.actions]
UBUNTU = Mixin(
    "http://occi.example.org/occi/infrastructure/os_tpl#",
    "ubuntu_22_04",
    "Ubuntu 22.04 LTS",
    depends=(infra.OS_TPL.id,),
    applies=(infra.COMPUTE.id,),
    location="/mixin/os_tpl/ubuntu_22_04/",
)
SMALL = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#small"


# ------------------------------------------------------------------------------------ helpers
def golden(name: str, data: bytes) -> None:
    path = DATA / name
    if os.environ.get("OCCI_REGEN_GOLDEN"):
        path.write_bytes(data)
    assert path.exists(), f"missing golden file {path}; run with OCCI_REGEN_GOLDEN=1"
    assert data == path.read_bytes(), f"{name} differs from the golden file"


def occi_dump(r: Rendered) -> bytes:
    """A text/occi rendering as text: one 'Name: value' line per header, a blank line, the body."""
    head = "".join(f"{n}: {v}\n" for n, v in r.headers)
    return head.encode("latin-1") + b"\n" + bytes(r.body)


def request(name: str) -> bytes:
    return (DATA / name).read_bytes()


def plain_msg(body: str | bytes, headers: dict[str, str] | None = None) -> Message:
    raw = body.encode() if isinstance(body, str) else body
    return Message(headers=headers or {}, body=raw, base_url=BASE)


def as_headers(r: Rendered) -> dict[str, str]:
    """What a server would hand a parser: lower-case names, repeated headers comma-joined."""
    out: dict[str, str] = {}
    for n, v in r.headers:
        out[n.lower()] = out[n.lower()] + ", " + v if n.lower() in out else v
    return out


def compute_with_mixins() -> Resource:
    return Resource(
        kind=infra.COMPUTE.id,
        id="6c1a2d44-7c0b-4b4e-9d0e-2f5d3d7f1a10",
        title="web server",
        summary='Front end; serves "www"',
        mixins=[UBUNTU.id, SMALL],
        attributes={
            "occi.compute.architecture": "x64",
            "occi.compute.cores": 2,
            "occi.compute.hostname": "web-1.example.com",
            "occi.compute.memory": 2.0,
            "occi.compute.state": "active",
        },
        location="/compute/6c1a2d44-7c0b-4b4e-9d0e-2f5d3d7f1a10",
        actions=[a for a in COMPUTE_ACTIONS if not a.endswith("#start")],
    )


def nic() -> Link:
    return Link(
        kind=infra.NETWORKINTERFACE.id,
        id="nic-456",
        title="public",
        mixins=[infra.IPNETWORKINTERFACE.id],
        attributes={
            "occi.networkinterface.interface": "eth0",
            "occi.networkinterface.mac": "00:11:22:33:44:55",
            "occi.networkinterface.state": "active",
            "occi.networkinterface.address": "192.0.2.10",
        },
        location="/link/networkinterface/nic-456",
        source="/compute/vm1",
        target="/network/123",
        target_kind=infra.NETWORK.id,
        rel=infra.NETWORK.id,
    )


def compute_with_nic() -> Resource:
    return Resource(
        kind=infra.COMPUTE.id,
        id="vm1",
        attributes={"occi.compute.cores": 1, "occi.compute.state": "inactive"},
        links=[nic()],
        location="/compute/vm1",
        actions=[infra.START.id],
    )


def storagelink() -> Link:
    return Link(
        kind=infra.STORAGELINK.id,
        id="sl-1",
        title="data disk",
        attributes={"occi.storagelink.deviceid": "vdb", "occi.storagelink.mountpoint": "/data"},
        location="/link/storagelink/sl-1",
        source="/compute/vm1",
        target="/storage/disk1",
        source_kind=infra.COMPUTE.id,
        target_kind=infra.STORAGE.id,
    )


def without_rendering_only_fields(e):
    """What text cannot carry back: applicable actions and the entity's own location."""
    e.actions = []
    e.location = None
    return e


# ------------------------------------------------------------------------ query interface
def test_query_interface_golden_plain():
    r = PLAIN.render_categories(Registry().collection(), CTX)
    assert r.content_type == "text/plain; charset=utf-8"
    assert r.headers == []
    golden("query_interface.plain.txt", r.body)
    lines = r.body.decode().splitlines()
    compute = next(ln for ln in lines if ln.startswith("Category: compute;"))
    assert 'class="kind"' in compute
    assert 'rel="http://schemas.ogf.org/occi/core#resource"' in compute
    assert 'location="/compute/"' in compute
    assert "occi.core.id{immutable}" in compute  # inherited attributes are listed
    assert "occi.compute.state{immutable}" in compute
    assert "occi.compute.cores " in compute  # mutable, not required: no braces
    assert "http://schemas.ogf.org/occi/infrastructure/compute/action#save" in compute
    storage = next(ln for ln in lines if ln.startswith("Category: storage;"))
    assert "occi.storage.size{required}" in storage
    small = next(ln for ln in lines if ln.startswith("Category: small;"))
    assert 'class="mixin"' in small
    assert 'rel="http://schemas.ogf.org/occi/infrastructure#resource_tpl"' in small
    assert 'location="/mixin/resource_tpl/small/"' in small
    stop = next(ln for ln in lines if ln.startswith("Category: stop;"))
    assert 'class="action"' in stop and 'attributes="method"' in stop
    assert "location=" not in stop and "rel=" not in stop
    n_categories = len(list(Registry().collection()))
    assert len(lines) == n_categories


def test_query_interface_golden_occi():
    r = OCCI.render_categories(Registry().collection(), CTX)
    assert r.content_type == "text/occi"
    assert r.body == b"OK\n"
    assert [n for n, _ in r.headers] == ["Category"]  # one comma-joined header
    golden("query_interface.occi.txt", occi_dump(r))
    assert r.headers[0][1].count('class="kind"') == len(infra.KINDS)


@pytest.mark.parametrize("rendering", [PLAIN, OCCI], ids=["plain", "occi"])
def test_query_interface_round_trip(rendering):
    coll = Registry().collection()
    r = rendering.render_categories(coll, CTX)
    msg = Message(headers=as_headers(r), body=bytes(r.body), base_url=BASE)
    refs = rendering.parse_categories(msg)
    cats = list(coll)
    assert [ref.id for ref in refs] == [c.id for c in cats]
    for ref, cat in zip(refs, cats, strict=True):
        assert ref.cls == cat.cls
        assert ref.title == cat.title
        assert ref.location == getattr(cat, "location", None)
    by_id = {ref.id: ref for ref in refs}
    compute = by_id[infra.COMPUTE.id]
    assert compute.rel == [infra.RESOURCE.id]
    assert set(compute.attributes) == set(infra.COMPUTE.all_attributes())
    assert compute.attributes["occi.compute.state"].mutable is False
    assert by_id[infra.STORAGE.id].attributes["occi.storage.size"].required is True
    assert by_id[SMALL].rel == [infra.RESOURCE_TPL.id]


def test_render_filtered_categories_and_mixin():
    coll = CategoryCollection(kinds=[], mixins=[UBUNTU], actions=[infra.STOP])
    body = PLAIN.render_categories(coll, CTX).body.decode()
    assert body == (
        'Category: ubuntu_22_04; scheme="http://occi.example.org/occi/infrastructure/os_tpl#"; '
        'class="mixin"; title="Ubuntu 22.04 LTS"; '
        'rel="http://schemas.ogf.org/occi/infrastructure#os_tpl"; '
        'location="/mixin/os_tpl/ubuntu_22_04/"\n'
        'Category: stop; scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#"; '
        'class="action"; title="Stop the compute instance"; attributes="method"\n'
    )
    m = PLAIN.render_mixin(UBUNTU, CTX)
    assert m.body.decode() == body.splitlines()[0] + "\n"
    mo = OCCI.render_mixin(UBUNTU, CTX)
    assert mo.headers == [("Category", body.splitlines()[0][len("Category: ") :])]


def test_parse_spec_query_response():
    refs = PLAIN.parse_categories(plain_msg(request("gfd185_query_response.txt")))
    assert [(r.term, r.cls) for r in refs] == [
        ("compute", "kind"),
        ("storage", "kind"),
        ("start", "action"),
        ("my_stuff", "mixin"),
    ]
    assert refs[0].location == "/compute/"  # absolute location made relative
    assert refs[0].title == "Compute Resource type"
    assert list(refs[0].attributes) == ["occi.compute.cores", "occi.compute.state"]
    assert refs[0].attributes["occi.compute.state"].mutable is False
    assert refs[1].attributes["occi.storage.size"].required is True
    assert refs[2].attributes["method"].mutable and not refs[2].attributes["method"].required
    assert refs[3].id == "http://example.com/occi/my_stuff#my_stuff"


def test_parse_rocci_model():
    refs = PLAIN.parse_categories(plain_msg(request("rocci_model.request.txt")))
    by_id = {r.id: r for r in refs}
    link = by_id["http://schemas.ogf.org/occi/core#link"]
    assert link.rel == ["http://schemas.ogf.org/occi/core#entity"]
    ident = link.attributes["occi.core.id"]
    assert ident.mutable is False and ident.required is True
    assert link.attributes["occi.core.source"].required is True
    assert by_id["http://schemas.ogf.org/occi/infrastructure#compute"].location == "/compute/"


# ------------------------------------------------------------------------------ entities
def test_compute_with_mixins_golden_plain():
    r = PLAIN.render_entity(compute_with_mixins(), CTX)
    golden("compute_mixins.plain.txt", r.body)
    lines = r.body.decode().splitlines()
    assert lines[0] == (
        'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"'
    )
    assert lines[1] == (
        'Category: ubuntu_22_04; scheme="http://occi.example.org/occi/infrastructure/os_tpl#"; '
        'class="mixin"'
    )
    assert lines[2] == (
        'Category: small; scheme="http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"'
        '; class="mixin"'
    )
    assert lines[3] == (
        "Link: </compute/6c1a2d44-7c0b-4b4e-9d0e-2f5d3d7f1a10?action=stop>; "
        'rel="http://schemas.ogf.org/occi/infrastructure/compute/action#stop"'
    )
    attrs = [ln for ln in lines if ln.startswith("X-OCCI-Attribute: ")]
    assert attrs[:3] == [
        'X-OCCI-Attribute: occi.core.id="6c1a2d44-7c0b-4b4e-9d0e-2f5d3d7f1a10"',
        'X-OCCI-Attribute: occi.core.title="web server"',
        'X-OCCI-Attribute: occi.core.summary="Front end; serves \\"www\\""',
    ]
    assert "X-OCCI-Attribute: occi.compute.cores=2" in attrs
    assert "X-OCCI-Attribute: occi.compute.memory=2.0" in attrs
    assert 'X-OCCI-Attribute: occi.compute.architecture="x64"' in attrs
    assert not any("action=start" in ln for ln in lines)


def test_compute_with_mixins_golden_occi():
    r = OCCI.render_entity(compute_with_mixins(), CTX)
    assert r.content_type == "text/occi" and r.body == b"OK\n"
    assert [n for n, _ in r.headers] == ["Category", "Link", "X-OCCI-Attribute"]
    golden("compute_mixins.occi.txt", occi_dump(r))
    cats = dict(r.headers)["Category"]
    assert cats.count('class="mixin"') == 2 and cats.count(", ") == 2


@pytest.mark.parametrize("rendering", [PLAIN, OCCI], ids=["plain", "occi"])
@pytest.mark.parametrize("make", [compute_with_mixins, compute_with_nic, storagelink])
def test_entity_round_trip(rendering, make):
    entity = make()
    r = rendering.render_entity(entity, CTX)
    msg = Message(headers=as_headers(r), body=bytes(r.body), base_url=BASE)
    [parsed] = rendering.parse_entities(msg)
    assert type(parsed) is type(entity)
    assert parsed == without_rendering_only_fields(entity)


def test_network_interface_inline_golden():
    r = PLAIN.render_entity(compute_with_nic(), CTX)
    golden("compute_nic.plain.txt", r.body)
    link_line = next(ln for ln in r.body.decode().splitlines() if ln.startswith("Link: </net"))
    assert link_line.startswith(
        'Link: </network/123>; rel="http://schemas.ogf.org/occi/infrastructure#network"; '
        'self="/link/networkinterface/nic-456"; '
        'category="http://schemas.ogf.org/occi/infrastructure#networkinterface '
        'http://schemas.ogf.org/occi/infrastructure/networkinterface#ipnetworkinterface"; '
        'occi.core.id="nic-456"; occi.core.title="public"; occi.core.source="/compute/vm1"; '
    )
    assert 'occi.networkinterface.interface="eth0"' in link_line
    assert "Link: </compute/vm1?action=start>; " in r.body.decode()
    golden("compute_nic.occi.txt", occi_dump(OCCI.render_entity(compute_with_nic(), CTX)))


def test_link_entity_golden():
    r = PLAIN.render_entity(storagelink(), CTX)
    golden("storagelink.plain.txt", r.body)
    assert r.body.decode().splitlines() == [
        'Category: storagelink; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"',
        'X-OCCI-Attribute: occi.core.id="sl-1"',
        'X-OCCI-Attribute: occi.core.title="data disk"',
        'X-OCCI-Attribute: occi.core.source="/compute/vm1"',
        'X-OCCI-Attribute: occi.core.target="/storage/disk1"',
        'X-OCCI-Attribute: occi.core.source.kind="http://schemas.ogf.org/occi/infrastructure#compute"',
        'X-OCCI-Attribute: occi.core.target.kind="http://schemas.ogf.org/occi/infrastructure#storage"',
        'X-OCCI-Attribute: occi.storagelink.deviceid="vdb"',
        'X-OCCI-Attribute: occi.storagelink.mountpoint="/data"',
    ]


def test_parse_gfd229_example_with_backslash_continuations():
    [e] = PLAIN.parse_entities(plain_msg(request("gfd229_compute.request.txt")))
    assert isinstance(e, Resource)
    assert e.kind == infra.COMPUTE.id
    assert e.id == "urn:uuid:b9ff813e-fee5-4a9d-b839-673f39746096"
    assert e.title == "My Dummy VM"
    assert e.links == []  # the action link is not a link to create
    assert e.attributes == {
        "occi.compute.architecture": "x86",
        "occi.compute.state": "inactive",
        "occi.compute.speed": 1.33,
        "occi.compute.memory": 2.0,
        "occi.compute.cores": 2,
        "occi.compute.hostname": "dummy",
    }
    assert isinstance(e.attributes["occi.compute.memory"], float)
    assert isinstance(e.attributes["occi.compute.cores"], int)


def test_parse_gfd229_example_crlf_equals_lf():
    lf = request("gfd229_compute.request.txt")
    crlf = lf.replace(b"\n", b"\r\n")
    assert PLAIN.parse_entities(plain_msg(crlf)) == PLAIN.parse_entities(plain_msg(lf))


def test_parse_gfd185_create_with_inline_link():
    [e] = PLAIN.parse_entities(plain_msg(request("gfd185_create_compute_with_link.request.txt")))
    assert e.kind == infra.COMPUTE.id
    assert e.attributes == {"occi.compute.cores": 2, "occi.compute.hostname": "foobar"}
    [link] = e.links
    assert link == Link(
        kind=infra.NETWORKINTERFACE.id,
        target="/network/123",
        rel=infra.NETWORK.id,
        attributes={
            "occi.networkinterface.interface": "eth0",
            "occi.networkinterface.mac": "00:11:22:33:44:55",
        },
    )


def test_parse_gfd185_create_link():
    [e] = PLAIN.parse_entities(plain_msg(request("gfd185_create_link.request.txt")))
    assert isinstance(e, Link)
    assert e.kind == infra.NETWORKINTERFACE.id
    assert (e.source, e.target) == ("/vms/foo/vm1", "/network/123")
    assert e.attributes == {}


def test_parse_rocci_instance():
    [e] = PLAIN.parse_entities(plain_msg(request("rocci_instance.request.txt")))
    assert e.kind == infra.COMPUTE.id and e.id == "89878" and e.title == "my_compute"
    assert e.summary.startswith("Instantiated with rOCCI-server")
    assert e.attributes == {
        "occi.compute.cores": 1,
        "occi.compute.memory": 1.0,
        "occi.compute.state": "active",
    }
    disk, nic_ = e.links  # three action links are skipped
    assert disk.kind == infra.STORAGELINK.id and disk.mixins == []
    assert disk.target == "/storage/5401" and disk.source == "/compute/89878"
    assert disk.location == "/storagelink/compute_89878_disk_0"
    assert disk.attributes == {
        "occi.storagelink.deviceid": "/dev/vda",
        "occi.storagelink.state": "active",
    }
    assert nic_.mixins == [infra.IPNETWORKINTERFACE.id]
    assert nic_.title == "public" and nic_.id == "compute_89878_nic_0"
    assert nic_.attributes["occi.networkinterface.address"] == "172.16.0.1"


def test_headers_only_text_plain_like_curl():
    """curl -H 'Category: ...' -H 'X-OCCI-Attribute: ...' with Content-Type text/plain."""
    headers = {
        "content-type": "text/plain",
        "category": 'compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"',
        "x-occi-attribute": 'occi.core.title="vm", occi.compute.cores=4',
        "location": "http://example.com/not/a/location",
    }
    [e] = PLAIN.parse_entities(Message(headers=headers, body=b"", base_url=BASE))
    assert e.kind == infra.COMPUTE.id and e.title == "vm"
    assert e.attributes == {"occi.compute.cores": 4}
    assert PLAIN.parse_locations(Message(headers=headers, body=b"", base_url=BASE)) == []


def test_body_and_headers_are_merged_body_first():
    body = 'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"\n'
    body += "X-OCCI-Attribute: occi.compute.cores=1\n"
    headers = {
        "category": 'small; scheme="http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"'
        '; class="mixin"',
        "x-occi-attribute": "occi.compute.cores=8",
    }
    [e] = PLAIN.parse_entities(plain_msg(body, headers))
    assert e.mixins == [SMALL]
    assert e.attributes == {"occi.compute.cores": 8}


def test_comma_joined_and_repeated_fields_agree():
    repeated = (
        'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"\n'
        'Category: small; scheme="http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#";'
        ' class="mixin"\n'
        'X-OCCI-Attribute: occi.core.title="a, b; c"\n'
        "X-OCCI-Attribute: occi.compute.memory=2.0\n"
        "X-OCCI-Attribute: occi.compute.cores=2\n"
        'Link: </network/1,2>; rel="http://schemas.ogf.org/occi/infrastructure#network"\n'
        'Link: </network/3>; rel="http://schemas.ogf.org/occi/infrastructure#network"\n'
    )
    headers = {
        "category": 'compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind",'
        'small; scheme="http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#";'
        ' class="mixin"',
        "x-occi-attribute": 'occi.core.title="a, b; c", occi.compute.memory=2.0,occi.compute.cores=2',
        "link": '</network/1,2>; rel="http://schemas.ogf.org/occi/infrastructure#network", '
        '</network/3>; rel="http://schemas.ogf.org/occi/infrastructure#network"',
    }
    from_body = PLAIN.parse_entities(plain_msg(repeated))
    from_headers = OCCI.parse_entities(Message(headers=headers, body=b"OK", base_url=BASE))
    assert from_body == from_headers
    [e] = from_body
    assert e.title == "a, b; c" and e.mixins == [SMALL]
    assert [link.target for link in e.links] == ["/network/1,2", "/network/3"]
    # comma-joined lines inside a text/plain body work too
    joined = "".join(f"{k.title()}: {v}\n" for k, v in headers.items())
    assert PLAIN.parse_entities(plain_msg(joined)) == from_body


def test_quoted_values_with_separators_and_escapes():
    body = (
        'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class=kind\n'
        'X-OCCI-Attribute: occi.core.title="a,b;c \\"q\\" back\\\\slash", x.n="2", x.b="true"\n'
    )
    [e] = PLAIN.parse_entities(plain_msg(body))
    assert e.title == 'a,b;c "q" back\\slash'
    assert e.attributes == {"x.n": "2", "x.b": "true"}  # quoted stays a string


@pytest.mark.parametrize("rendering", [PLAIN, OCCI], ids=["plain", "occi"])
def test_awkward_strings_round_trip(rendering):
    e = Resource(
        kind=infra.COMPUTE.id,
        title='comma, semi; quote " backslash \\ <angle> #hash',
        summary="two\nlines\r\nand\ttab, ünïcødé ☃",
        attributes={"x.list": [1, "a,b"], "x.dict": {"k": "v"}, "x.neg": -3, "x.f": 0.1},
    )
    r = rendering.render_entity(e, CTX)
    raw = bytes(r.body) + "".join(v for _, v in r.headers).encode("latin-1")
    assert raw.count(b"\n") == (1 if rendering is OCCI else 7)  # no value breaks a line
    msg = Message(headers=as_headers(r), body=bytes(r.body), base_url=BASE)
    [parsed] = rendering.parse_entities(msg)
    assert parsed == e


def test_extra_category_params_trailing_semicolon_and_bare_class():
    body = (
        'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class=kind; '
        'title="Compute Resource"; rel="http://schemas.ogf.org/occi/core#resource"; '
        'location="/compute/"; attributes="occi.compute.cores"; actions="x#y";\n'
        'Category: small; scheme="http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#";'
        ' class="mixin"; location="/mixin/resource_tpl/small/";\n'
        "x-occi-attribute: occi.compute.cores=2;\n"
    )
    [e] = PLAIN.parse_entities(plain_msg(body))
    assert e.kind == infra.COMPUTE.id and e.mixins == [SMALL]
    assert e.attributes == {"occi.compute.cores": 2}


def test_gfd185_quoted_class_typo_is_tolerated():
    body = (
        'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
        '"class=kind";\nX-OCCI-Attribute: occi.compute.hostname="foobar"\n'
    )
    [e] = PLAIN.parse_entities(plain_msg(body))
    assert e.kind == infra.COMPUTE.id


def test_indented_body_lines_are_not_folded_into_each_other():
    body = (
        '    Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#";\n'
        '        class="kind"\n'
        "    X-OCCI-Attribute: occi.compute.cores=2\n"
    )
    [e] = PLAIN.parse_entities(plain_msg(body))
    assert e.kind == infra.COMPUTE.id and e.attributes == {"occi.compute.cores": 2}


def test_missing_kind_is_allowed():
    [e] = PLAIN.parse_entities(plain_msg("X-OCCI-Attribute: occi.compute.memory=4.0\n"))
    assert e == Resource(kind="", attributes={"occi.compute.memory": 4.0})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("false", False),
        ("42", 42),
        ("-7", -7),
        ("2.0", 2.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("foobar", "foobar"),
        ('"42"', "42"),
        ('""', ""),
        ('"[1, 2]"', [1, 2]),
        ('"[not json"', "[not json"),
        ("x86_64", "x86_64"),
    ],
)
def test_attribute_value_types(text, expected):
    msg = plain_msg(f"X-OCCI-Attribute: a.b={text}\n")
    value = PLAIN.parse_attribute_filter(msg)["a.b"]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.0, "2.0"),
        (1.33, "1.33"),
        (1e20, "100000000000000000000.0"),
        (1e-7, "0.0000001"),
        ("x", '"x"'),
        ([1, "a"], '"[1,\\"a\\"]"'),
        ({"k": 1}, '"{\\"k\\":1}"'),
    ],
)
def test_attribute_value_rendering(value, rendered):
    e = Resource(kind="", attributes={"a.b": value, "a.none": None})
    assert PLAIN.render_entity(e, CTX).body.decode() == f"X-OCCI-Attribute: a.b={rendered}\n"


# ------------------------------------------------------------------------ actions and mixins
def test_parse_action_invocation_gfd185():
    inv = PLAIN.parse_action(plain_msg(request("gfd185_action_stop.request.txt")))
    assert inv == ActionInvocation(infra.STOP.id, {"method": "poweroff"})


def test_parse_action_invocation_rocci_and_headers():
    inv = PLAIN.parse_action(plain_msg(request("rocci_action.request.txt")))
    assert inv == ActionInvocation(infra.SUSPEND.id, {"method": "suspend"})
    headers = {
        "category": 'suspend;scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#";'
        'class="action"',
        "x-occi-attribute": 'method="suspend"',
    }
    assert OCCI.parse_action(Message(headers=headers, body=b"OK")) == inv


def test_parse_action_without_category_or_class():
    assert PLAIN.parse_action(plain_msg("")) == ActionInvocation(None, {})
    body = 'Category: start; scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#"\n'
    assert PLAIN.parse_action(plain_msg(body)).action == infra.START.id
    with pytest.raises(ParseError, match='class="action"'):
        PLAIN.parse_action(
            plain_msg(
                'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"'
            )
        )


def test_parse_user_mixin_definition_gfd185():
    [ref] = PLAIN.parse_categories(plain_msg(request("gfd185_user_mixin.request.txt")))
    assert (ref.scheme, ref.term, ref.cls) == (
        "http://example.com/occi/my_stuff#",
        "my_stuff",
        "mixin",
    )
    assert ref.rel == ["http:/example.com/occi/something_else#mixin"]
    assert ref.location == "/my_stuff/"
    assert ref.title is None and ref.attributes == {}
    # the same request as text/occi headers
    folded = request("gfd185_user_mixin.request.txt").decode().split(":", 1)[1]
    [ref2] = OCCI.parse_categories(Message(headers={"category": folded}, base_url=BASE))
    assert ref2 == ref


def test_parse_categories_delete_without_class():
    body = 'Category: my_stuff;\n   scheme="http://example.com/occi/my_stuff#";\n'
    [ref] = PLAIN.parse_categories(plain_msg(body))
    assert ref.id == "http://example.com/occi/my_stuff#my_stuff" and ref.cls is None
    assert PLAIN.parse_categories(plain_msg("")) == []


# ------------------------------------------------------------------------------- locations
LOCS = ["/compute/a", "/compute/b", "http://other.example.org/storage/c"]


def test_locations_golden():
    plain = PLAIN.render_locations(LOCS, CTX)
    golden("locations.plain.txt", plain.body)
    assert plain.body.decode().splitlines() == [
        "X-OCCI-Location: http://example.com/compute/a",
        "X-OCCI-Location: http://example.com/compute/b",
        "X-OCCI-Location: http://other.example.org/storage/c",
    ]
    occi = OCCI.render_locations(LOCS, CTX)
    golden("locations.occi.txt", occi_dump(occi))
    assert occi.headers == [
        (
            "X-OCCI-Location",
            "http://example.com/compute/a, http://example.com/compute/b, "
            "http://other.example.org/storage/c",
        )
    ]
    uris = URILIST.render_locations(LOCS, CTX)
    golden("locations.urilist.txt", uris.body)
    assert uris.content_type == "text/uri-list"
    assert uris.body == (
        b"http://example.com/compute/a\r\nhttp://example.com/compute/b\r\n"
        b"http://other.example.org/storage/c\r\n"
    )


def test_render_entities_as_locations():
    entities = (e for e in [compute_with_mixins(), compute_with_nic(), Resource(kind="")])
    r = PLAIN.render_entities(entities, CTX)
    assert r.body.decode().splitlines() == [
        "X-OCCI-Location: http://example.com/compute/6c1a2d44-7c0b-4b4e-9d0e-2f5d3d7f1a10",
        "X-OCCI-Location: http://example.com/compute/vm1",
    ]
    r = OCCI.render_entities([compute_with_nic(), storagelink()], CTX)
    assert r.headers == [
        (
            "X-OCCI-Location",
            "http://example.com/compute/vm1, http://example.com/link/storagelink/sl-1",
        )
    ]
    assert URILIST.render_entities([storagelink()], CTX).body == (
        b"http://example.com/link/storagelink/sl-1\r\n"
    )
    empty = OCCI.render_entities([], CTX)
    assert empty.headers == [] and empty.body == b"OK\n"
    assert PLAIN.render_entities([], CTX).body == b""


@pytest.mark.parametrize("rendering", [PLAIN, OCCI], ids=["plain", "occi"])
def test_locations_round_trip(rendering):
    r = rendering.render_locations(LOCS, CTX)
    msg = Message(headers=as_headers(r), body=bytes(r.body), base_url=BASE)
    assert rendering.parse_locations(msg) == LOCS


def test_parse_locations_forms():
    spec = PLAIN.parse_locations(plain_msg(request("gfd185_mixin_locations.request.txt")))
    assert spec == ["/vms/foo/vm1", "/vms/foo/vm2", "/disks/foo/disk1"]
    joined = Message(
        headers={
            "x-occi-location": "/vms/foo/vm1, http://example.com/vms/foo/vm2,/disks/foo/disk1"
        },
        base_url=BASE,
    )
    assert OCCI.parse_locations(joined) == spec
    assert PLAIN.parse_locations(joined) == spec
    bare = "http://example.com/vms/foo/vm1\r\n/vms/foo/vm2\r\n\r\nhttp://example.com/disks/foo/disk1\r\n"
    assert PLAIN.parse_locations(plain_msg(bare)) == spec
    uris = (
        "# mixin members\r\nhttp://example.com/vms/foo/vm1\r\n\r\n/vms/foo/vm2\n"
        "  http://example.com/disks/foo/disk1  \n"
    )
    assert URILIST.parse_locations(plain_msg(uris)) == spec


# --------------------------------------------------------------------------- ok and errors
def test_ok_and_error_renderings():
    assert PLAIN.render_ok(CTX) == Rendered("text/plain; charset=utf-8", [], b"OK\n")
    assert OCCI.render_ok(CTX) == Rendered("text/occi", [], b"OK\n")
    assert URILIST.render_ok(CTX).body == b""
    err = PLAIN.render_error(404, "Not Found", "no compute at /compute/x", CTX)
    assert err.body == b"no compute at /compute/x\n" and err.headers == []
    err = OCCI.render_error(400, "Bad Request", "bad Category", CTX)
    assert err.content_type == "text/occi" and err.body == b"bad Category\n" and err.headers == []
    err = URILIST.render_error(406, "Not Acceptable", "", CTX)
    assert err.body == b"Not Acceptable\n"


def test_uri_list_refuses_documents():
    with pytest.raises(Unrenderable):
        URILIST.render_entity(compute_with_nic(), CTX)
    with pytest.raises(Unrenderable):
        URILIST.render_categories(Registry().collection(), CTX)
    with pytest.raises(Unrenderable):
        URILIST.render_mixin(UBUNTU, CTX)
    for parse in (URILIST.parse_entities, URILIST.parse_action, URILIST.parse_categories):
        with pytest.raises(ParseError, match="text/uri-list carries only locations"):
            parse(plain_msg("http://example.com/compute/a\n"))


def test_media_types():
    assert PLAIN.media_types == ("text/plain", "text/occi+plain")
    assert OCCI.media_types == ("text/occi",)
    assert URILIST.media_types == ("text/uri-list",)


def test_attribute_filter_from_headers():
    msg = Message(headers={"x-occi-attribute": 'occi.compute.state="active", occi.compute.cores=2'})
    assert OCCI.parse_attribute_filter(msg) == {
        "occi.compute.state": "active",
        "occi.compute.cores": 2,
    }
    assert PLAIN.parse_attribute_filter(msg) == {
        "occi.compute.state": "active",
        "occi.compute.cores": 2,
    }


def test_utf8_header_values_on_the_wire():
    e = Resource(kind=infra.COMPUTE.id, title="Straße ☃")
    r = OCCI.render_entity(e, CTX)
    wire = dict(r.headers)["X-OCCI-Attribute"]
    assert wire.encode("latin-1").decode("utf-8") == 'occi.core.title="Straße ☃"'
    # a WSGI server hands the value back as latin-1; a test client may hand it over decoded
    for value in (wire, 'occi.core.title="Straße ☃"'):
        [p] = OCCI.parse_entities(Message(headers={"x-occi-attribute": value}))
        assert p.title == "Straße ☃"


# ------------------------------------------------------------------------------ malformed
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("this line has no colon\n", "'this line has no colon'"),
        ("X-OCCI-Atribute: a=1\n", "unknown field 'X-OCCI-Atribute'"),
        ('Category: compute; class="kind"\n', "has no scheme"),
        ('Category: compute; scheme="http://x#; class="kind"\n', "unbalanced double quote"),
        ("X-OCCI-Attribute: occi.compute.cores\n", "has no '='"),
        ('X-OCCI-Attribute: occi.core.title="open\n', "unbalanced double quote"),
        ("X-OCCI-Attribute: -bad=1\n", "invalid attribute name '-bad'"),
        ('X-OCCI-Attribute: a="x" y\n', "unexpected text 'y'"),
        ('Category: scheme="http://x#"; class="kind"\n', "must start with a term"),
        ('Category: compute; scheme="http://x#"; class="thing"\n', "use kind, mixin or action"),
        ('Category: compute; scheme="http://x#"\n', "has no class"),
        (
            'Category: a; scheme="http://x#"; class="kind"\nCategory: b; scheme="http://x#"; '
            'class="kind"\n',
            "exactly one kind",
        ),
        ('Category: stop; scheme="http://x/action#"; class="action"\n', "is an action"),
        ('Link: /network/1; rel="http://x#network"\n', "must start with <uri>"),
        ('Link: </network/1; rel="http://x#network"\n', "unclosed '<'"),
        ("Link: </network/1>; rel\n", "is not name=value"),
    ],
)
def test_malformed_inputs(body, fragment):
    with pytest.raises(ParseError) as info:
        PLAIN.parse_entities(plain_msg(body))
    assert fragment in str(info.value)


def test_malformed_header_and_long_text_is_truncated():
    long_value = "x" * 300
    with pytest.raises(ParseError) as info:
        OCCI.parse_entities(Message(headers={"x-occi-attribute": long_value}))
    message = str(info.value)
    assert "has no '='" in message and "xxx..." in message and len(message) < 250


def test_malformed_attribute_list_in_category():
    body = 'Category: m; scheme="http://x#"; class="mixin"; attributes="a{required} {oops}"\n'
    with pytest.raises(ParseError, match="cannot read the attribute list"):
        PLAIN.parse_categories(plain_msg(body))

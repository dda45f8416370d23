"""X.509 client certificates: the method as a proxy's headers reach it (trusted and untrusted
addresses, what the proxy says about the certificate, every DN form), and the example HAProxy
configuration (examples/haproxy-tls.cfg) run for real with certificates made here."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from cryptography import x509 as cx509

from occi.errors import BadRequest
from occi.identity.principal import AuthFailed, Principal
from occi.identity.store import IdentityTx
from occi.identity.x509 import (
    X509Method,
    method_from_settings,
    normalize_dn,
    parse_networks,
)
from occi.settings import Settings, SettingsError
from occi.store import make_store
from occi.store.sql import SqlStore
from tests.live import ROOT, LiveServer, free_port
from tests.test_cli_identity import admin, ok

CAROL = "CN=Carol,DC=example,DC=org"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlStore]:
    s = make_store(sqlite_url)
    assert isinstance(s, SqlStore)
    s.upgrade()
    with s.begin() as tx:
        IdentityTx(tx).create_user("carol", x509_dn=CAROL)
        IdentityTx(tx).grant("carol", "default", "member")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def method() -> X509Method:
    return X509Method(parse_networks("127.0.0.1, ::1 10.0.0.0/8"))


def headers(dn: str | None = CAROL, verify: str | None = "SUCCESS", **more: str) -> dict[str, str]:
    out = {"x-ssl-client-verify": verify, "x-ssl-client-s-dn": dn, **more}
    return {k: v for k, v in out.items() if v is not None}


def login(method: X509Method, store: SqlStore, hdrs: dict[str, str], addr="127.0.0.1") -> Principal:
    presented = method.find(hdrs, addr)
    assert presented is not None
    return method.verify(presented, store)


# ------------------------------------------------------------------ the method
@pytest.mark.parametrize(
    "dn",
    [
        CAROL,
        "/DC=org/DC=example/CN=Carol",  # HAProxy's default ssl_c_s_dn, OpenSSL's one-line form
        "cn=Carol,dc=example,Dc=org",
        "  CN=Carol,DC=example,DC=org  ",
    ],
)
def test_a_verified_certificate_of_a_known_subject_signs_in(method, store, dn):
    p = login(method, store, headers(dn))
    assert (p.name, p.method, dict(p.roles)) == (
        "carol",
        "x509",
        {"default": ("default", "member")},
    )


@pytest.mark.parametrize("addr", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "10.9.8.7"])
def test_every_configured_proxy_address_is_believed(method, store, addr):
    assert login(method, store, headers(), addr).name == "carol"


def test_the_headers_from_other_addresses_are_ignored_and_logged_once(method, caplog):
    caplog.set_level(logging.WARNING, logger="occi.identity.x509")
    for _ in range(3):
        assert method.find(headers(), "192.0.2.7") is None
        assert method.find(headers(), "") is None
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 2 and "192.0.2.7" in told[0] and "x509_proxies" in told[0]
    assert method.find({"authorization": "Basic eDp5"}, "127.0.0.1") is None
    assert method.challenge() == 'Certificate realm="occi"'


@pytest.mark.parametrize("verify", [None, "NONE", "FAILED:unable to verify", "FAILED:20", "0"])
def test_a_certificate_the_proxy_did_not_verify_is_refused(method, verify):
    with pytest.raises(AuthFailed, match="did not verify"):
        method.find(headers(verify=verify), "127.0.0.1")


def test_no_certificate_presented_leaves_the_request_to_other_methods(method):
    # nginx's $ssl_client_verify is NONE when the client sent no certificate
    assert method.find({"x-ssl-client-verify": "NONE"}, "127.0.0.1") is None
    assert method.find({"x-ssl-client-s-dn": ""}, "127.0.0.1") is None


def test_an_unknown_or_unreadable_subject_is_refused(method, store):
    with pytest.raises(AuthFailed, match="no user has the certificate subject CN=Mallory"):
        login(method, store, headers("/DC=org/DC=example/CN=Mallory"))
    for junk in ("not a dn", "/XYZ=1/CN=a", "CN=a,=b"):
        with pytest.raises(AuthFailed, match="unreadable"):
            method.find(headers(junk), "127.0.0.1")
    with pytest.raises(AuthFailed, match="neither"):
        method.find(headers(None), "127.0.0.1")


def test_the_certificate_itself_in_every_form_proxies_send(method, store):
    ca = trustme.CA()
    leaf = ca.issue_cert("dave@example.org", common_name="Dave", organization_name="Example")
    pem = leaf.cert_chain_pems[0].bytes().decode()
    cert = cx509.load_pem_x509_certificate(pem.encode())
    dn = cert.subject.rfc4514_string()
    with store.begin() as tx:
        IdentityTx(tx).create_user("dave", x509_dn=normalize_dn(dn))
    der = base64.b64encode(cert.public_bytes(encoding=_der())).decode()
    for form in (
        urllib.parse.quote(pem),  # nginx's $ssl_client_escaped_cert
        pem,
        pem.replace("\n", " "),  # a proxy that folds the lines
        der,  # HAProxy's ssl_c_der,base64
    ):
        p = login(method, store, headers(None, **{"x-ssl-client-cert": form}))
        assert p.name == "dave"
    with pytest.raises(AuthFailed, match="unreadable"):
        method.find(headers(None, **{"x-ssl-client-cert": "-----BEGIN CERTIFICATE-----abc"}), "::1")


def _der() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def test_dn_forms_normalise_to_one():
    assert normalize_dn("/C=NL/O=Example/OU=People/CN=Carol") == "CN=Carol,OU=People,O=Example,C=NL"
    assert normalize_dn("CN=Doe\\, John,O=X") == normalize_dn("/O=X/CN=Doe, John")
    assert normalize_dn("/O=A/B Corp/CN=x") == "CN=x,O=A/B Corp"
    assert normalize_dn("/emailAddress=a@b.org/CN=x") == normalize_dn("CN=x,E=a@b.org")
    assert normalize_dn("CN=Jos\\C3\\A9") == "CN=José"  # HAProxy's rfc2253 escapes UTF-8
    with pytest.raises(BadRequest, match="is not a distinguished name"):
        normalize_dn("")


def test_the_cli_stores_the_form_the_method_looks_up(tmp_path, method):
    url = f"sqlite:///{tmp_path / 'occi.db'}"
    ok(admin(tmp_path, url, "migrate"))
    made = ok(
        admin(tmp_path, url, "users", "create", "carol", "--x509-dn", "/DC=org/DC=example/CN=Carol")
    )
    assert "x509" in made
    refused = admin(tmp_path, url, "users", "create", "eve", "--x509-dn", "CN=a,=b")
    assert refused.returncode == 1 and "not a distinguished name" in refused.stderr
    store = make_store(url)
    try:
        assert login(method, store, headers(CAROL)).name == "carol"
    finally:
        store.close()


def test_settings_make_the_method_or_say_what_is_wrong():
    m = method_from_settings(Settings.load(environ={}))
    assert m.trusted("127.0.0.1") and m.trusted("::1") and not m.trusted("127.0.0.2")
    with pytest.raises(SettingsError, match="not an address"):
        method_from_settings(Settings.load(environ={"OCCI_X509_PROXIES": "proxy.example.org"}))
    with pytest.raises(SettingsError, match="names no proxy"):
        method_from_settings(Settings.load(environ={"OCCI_X509_PROXIES": ""}))


# ------------------------------------------------------------------ through HAProxy
class Certificates:
    """A server certificate for 127.0.0.1, the client CA, a client of it and one of another CA."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        server_ca, self.client_ca, other_ca = trustme.CA(), trustme.CA(), trustme.CA()
        self.server_ca = tmp / "server-ca.pem"
        server_ca.cert_pem.write_to_path(str(self.server_ca))
        server_ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            str(tmp / "server.pem")
        )
        self.client_ca.cert_pem.write_to_path(str(tmp / "clients-ca.pem"))
        self.carol = self.client("carol", self.client_ca, "Carol")
        self.mallory = self.client("mallory", self.client_ca, "Mallory")
        self.impostor = self.client("impostor", other_ca, "Carol")

    def client(self, name: str, ca: trustme.CA, cn: str) -> tuple[str, str]:
        leaf = ca.issue_cert(f"{name}@example.org", common_name=cn, organization_name="Example")
        cert, key = self.tmp / f"{name}.crt", self.tmp / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return str(cert), str(key)

    def subject(self, name: str) -> cx509.Name:
        return cx509.load_pem_x509_certificate((self.tmp / f"{name}.crt").read_bytes()).subject


class TlsProxy:
    """haproxy -f examples/haproxy-tls.cfg, on a free port, with the test's certificates,
    in front of the server on `backend_port`."""

    def __init__(self, tmp: Path, certs: Certificates, backend_port: int):
        assert shutil.which("haproxy"), "haproxy is needed (make test installs it)"
        cfg = (ROOT / "examples" / "haproxy-tls.cfg").read_text()
        self.port = free_port()
        for old, new in (
            ("bind 127.0.0.1:8443", f"bind 127.0.0.1:{self.port}"),
            ("/etc/haproxy/occi/", f"{tmp}/"),
            ("127.0.0.1:8080", f"127.0.0.1:{backend_port}"),
        ):
            assert old in cfg
            cfg = cfg.replace(old, new)
        path = tmp / "haproxy-tls.cfg"
        path.write_text(cfg)
        self.url = f"https://127.0.0.1:{self.port}"
        self.certs = certs
        self.log = open(tmp / "haproxy.log", "w+")
        self.proc = subprocess.Popen(
            ["haproxy", "-db", "-f", str(path)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("haproxy exited: " + (tmp / "haproxy.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("haproxy did not come up")

    def get(self, path: str, cert: tuple[str, str] | None = None, **kw: Any) -> requests.Response:
        return requests.get(
            self.url + path, cert=cert, verify=str(self.certs.server_ca), timeout=30, **kw
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.log.close()


class Echo:
    """A backend answering every GET with the request headers it got, as JSON."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = json.dumps([[k.lower(), v] for k, v in self.headers.items()]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return Certificates(tmp_path)


FORGED = {
    "X-SSL-Client-Verify": "SUCCESS",
    "X-SSL-Client-S-DN": CAROL,
    "x-ssl-client-cert": "junk",
    "X_SSL_Client_Verify": "SUCCESS",
}


@pytest.mark.server
def test_haproxy_passes_the_verified_subject_and_drops_what_clients_claim(tmp_path, certs):
    echo = Echo()
    proxy = TlsProxy(tmp_path, certs, echo.port)
    try:
        got = dict(proxy.get("/", certs.carol, headers=FORGED).json())
        assert got["x-ssl-client-verify"] == "SUCCESS"
        # HAProxy's RFC 2253 subject is the canonical form as is
        assert got["x-ssl-client-s-dn"] == certs.subject("carol").rfc4514_string()
        assert normalize_dn(got["x-ssl-client-s-dn"]) == got["x-ssl-client-s-dn"]
        assert "x-ssl-client-cert" not in got and "x_ssl_client_verify" not in got
        # without a certificate: nothing the client claimed gets through
        got = dict(proxy.get("/", headers=FORGED).json())
        assert not [k for k in got if k.replace("_", "-").startswith("x-ssl-client")]
        # a certificate of another CA ends the handshake
        with pytest.raises(requests.exceptions.SSLError):
            proxy.get("/", certs.impostor)
    finally:
        proxy.stop()
        echo.stop()


@pytest.mark.server
def test_a_client_certificate_signs_in_through_haproxy(tmp_path, certs):
    url = f"sqlite:///{tmp_path / 'occi.db'}"
    ok(admin(tmp_path, url, "migrate"))
    # the administrator types the subject as openssl x509 -subject prints it
    oneline = "/" + "/".join(a.rfc4514_string() for a in certs.subject("carol"))
    ok(admin(tmp_path, url, "users", "create", "carol", "--x509-dn", oneline))
    ok(admin(tmp_path, url, "roles", "grant", "carol", "default", "member"))
    server = LiveServer(tmp_path, database_url=url, health="/healthz", auth="x509")
    proxy = TlsProxy(tmp_path, certs, server.port)
    try:
        r = proxy.get("/compute/", certs.carol, headers={"Accept": "application/json"})
        assert r.status_code == 200, r.text
        # HAProxy passes the client's address on (X-Forwarded-For, for the throttle); the
        # headers are still believed: they come from the proxy, whoever the client is
        forwarded = {"Accept": "application/json", "X-Forwarded-For": "203.0.113.9"}
        r = proxy.get("/compute/", certs.carol, headers=forwarded)
        assert r.status_code == 200, r.text
        # no certificate, a forged claim, a subject nobody has: 401 with the challenge
        for cert, extra in ((None, {}), (None, FORGED), (certs.mallory, {})):
            r = proxy.get("/compute/", cert, headers={"Accept": "application/json", **extra})
            assert r.status_code == 401, r.text
            assert "Certificate" in r.headers["WWW-Authenticate"]
        # a certificate of another CA with the same subject never reaches the server
        with pytest.raises(requests.exceptions.SSLError):
            proxy.get("/compute/", certs.impostor)
    finally:
        proxy.stop()
        server.stop()

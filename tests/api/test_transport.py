"""The transport under a real gunicorn: what a client sees for bodies above `max_body`, and
whether slow clients can take every worker thread.

Each test starts `occi-server` (gunicorn, gthread workers) as a subprocess and talks to it over
real sockets, with http.client, raw sockets and curl.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.live import LiveServer

JSON = "application/occi+json"
INFRA = "http://schemas.ogf.org/occi/infrastructure#"


class Server(LiveServer):
    """`occi-server` on a free port, with the given OCCI_* settings."""

    def __init__(self, tmp: Path, workers: int = 1, threads: int = 2, **settings: object):
        super().__init__(tmp, workers=workers, threads=threads, **settings)


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path, workers=1, threads=2)
    yield srv
    srv.stop()


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/compute/", body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.mark.server
def test_a_body_above_max_body_gets_a_413_the_client_reads(server):
    """http.client sends the whole body before reading: the server must take it in."""
    body = b"x" * (20 << 20)
    status, text = _post(server.port, body, {"Content-Type": JSON, "Accept": JSON})
    assert status == 413
    assert b"limit" in text
    # chunked too (http.client chunks an iterable body)
    chunks = (b"y" * (1 << 20) for _ in range(20))
    status, text = _post(server.port, chunks, {"Content-Type": JSON, "Accept": JSON})
    assert status == 413
    # the server still serves
    assert requests.get(server.url + "/-/", timeout=30).status_code == 200


@pytest.mark.server
def test_head_over_real_http_announces_the_length_of_get(server):
    """gunicorn passes HEAD's Content-Length through and sends no body after it."""
    h = {"Content-Type": JSON, "Accept": JSON}
    requests.post(server.url + "/compute/", json={"kind": INFRA + "compute"}, headers=h)
    get = requests.get(server.url + "/compute/", headers=h)
    assert "Content-Length" not in get.headers  # streamed
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("HEAD", "/compute/", headers=h)
    r = conn.getresponse()
    assert r.status == 200 and int(r.getheader("Content-Length")) == len(get.content)
    assert r.read() == b""
    conn.request("GET", "/-/", headers=h)  # the connection stays usable: nothing trailed
    assert conn.getresponse().status == 200
    conn.close()


@pytest.mark.server
def test_curl_reads_the_413_for_a_large_body(server, tmp_path):
    """curl sends `Expect: 100-continue` for a large body: it gets the 413 before it uploads
    anything. Without Expect, and chunked, it uploads and then reads the 413."""
    assert shutil.which("curl"), "curl is needed (make test installs it)"
    big = tmp_path / "big.json"
    big.write_bytes(b"x" * (20 << 20))

    def curl(*extra: str) -> tuple[str, int]:
        p = subprocess.run(
            [
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}",
                "-H", f"Content-Type: {JSON}", *extra,
                "--data-binary", f"@{big}", server.url + "/compute/",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        status, uploaded = p.stdout.split()
        return status, int(uploaded)

    status, uploaded = curl()
    assert status == "413" and uploaded < (1 << 20)
    assert curl("-H", "Expect:")[0] == "413"
    assert curl("-H", "Transfer-Encoding: chunked")[0] == "413"
    assert requests.get(server.url + "/-/", timeout=30).status_code == 200


@pytest.mark.server
def test_slow_clients_do_not_hold_every_worker_thread(tmp_path):
    """Twice as many stalled clients as the server has threads, half stopping inside their
    headers and half inside their body: a normal request still gets its answer, and the
    stalled bodies get a 408."""
    srv = Server(tmp_path, workers=1, threads=2, read_timeout=2)
    stalled = []
    try:
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(b"GET /-/ HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n")
            stalled.append(s)
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(
                b"POST /compute/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/occi+json\r\n"
                b"Content-Length: 1000\r\n\r\n" + b'{"kind": "' + b" " * 400
            )
            stalled.append(s)
        # a generous bound: an answer at all is what is asserted, not how fast
        r = requests.get(srv.url + "/-/", timeout=120)
        assert r.status_code == 200
        answers = []
        for s in stalled[1::2]:
            s.settimeout(60)
            answers.append(s.recv(65536).split(b"\r\n", 1)[0])
        assert answers == [b"HTTP/1.1 408 Request Timeout"] * 8, answers
    finally:
        for s in stalled:
            s.close()
        srv.stop()


@pytest.mark.server
def test_haproxy_example_holds_stalled_clients_in_front(tmp_path):
    """Through examples/haproxy.cfg, stalled clients wait in HAProxy, not in the server: with
    the server's own bound off, a normal request is still answered while they stall."""
    from tests.api.test_failover import HAProxy

    srv = Server(tmp_path, workers=1, threads=2, read_timeout=0)
    lb = HAProxy(tmp_path, [srv.port, srv.port])
    port = int(lb.url.rsplit(":", 1)[1])
    stalled = []
    try:
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /-/ HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n")
            stalled.append(s)
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(
                b"POST /compute/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/occi+json\r\n"
                b"Content-Length: 1000\r\n\r\n" + b'{"kind": "' + b" " * 400
            )
            stalled.append(s)
        time.sleep(0.5)  # let them all reach HAProxy (no assertion on time)
        # generous: unprotected, the answer waits for HAProxy's 60 s client timeout
        assert requests.get(lb.url + "/-/", timeout=45).status_code == 200
    finally:
        for s in stalled:
            s.close()
        lb.stop()
        srv.stop()


@pytest.mark.server
def test_a_malformed_chunked_body_is_a_400_not_a_500(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(
            b"POST /compute/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/occi+json\r\n"
            b"Accept: application/occi+json\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\n{}\r\n0\r\n\r\n"
        )
        answer = b""
        while b"}}" not in answer:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"malformed" in answer


@pytest.mark.server
@pytest.mark.parametrize(
    "request_head, status",
    [
        (b"GET /-/ HTTP/1.1\r\nHost: x\r\nX-OCCI-Attribute: a\x00b\r\n\r\n", 400),
        (b"GET /-/ HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ],
    ids=["nul-in-header", "space-in-name", "long-request-line"],
)
def test_requests_gunicorn_cannot_parse_get_the_servers_own_plain_answer(
    server, request_head, status
):
    """gunicorn answers what it cannot parse before the app sees it; the answer is still the
    server's: text/plain (the OCCI default: the Accept header could not be read either), with
    the OCCI Server header, never gunicorn's HTML."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(request_head)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), answer
    assert b"\r\nContent-Type: text/plain; charset=utf-8" in head
    assert b"OCCI/1.2" in head  # the Server header
    assert b"<html>" not in body and body.endswith(b"\n") and len(body) > 1
    assert requests.get(server.url + "/-/", timeout=30).status_code == 200


@pytest.mark.server
@pytest.mark.parametrize("method", ["GET", "OPTIONS", "HEAD"])
def test_an_unread_body_does_not_break_the_kept_alive_connection(server, method):
    """A request whose answer needs no body (GET of an entity, OPTIONS) may still carry a large
    one; the connection the answer keeps alive serves the client's next request."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = b"x" * 200_000
    conn.request(method, "/compute/nothing-here", body=body, headers={"Content-Type": "text/plain"})
    first = conn.getresponse()
    first.read()
    assert first.status in (204, 404)
    assert first.getheader("Connection", "").lower() != "close"
    conn.request("GET", "/-/")  # the same connection
    second = conn.getresponse()
    assert second.status == 200 and second.read()
    conn.close()

"""The gunicorn worker the server runs under: gthread, with a bound on how long a client may
take to send a request, and an early 413 for clients that wait for 100 Continue.

gunicorn's gthread worker reads a request's headers and body in a pool thread, from a blocking
socket without a timeout: a client that sends half a request and stops holds that thread for
good, and `threads` such clients hold the whole process. Here a deadline watches each read:
`read_timeout` seconds for the headers (from the moment the connection has data), then again
for the body. A client past its deadline has the read side of its socket shut, which wakes the
blocked read at once; its request fails (headers: the connection closes; body: 408) and the
thread is free.

A client that sends `Expect: 100-continue` with a Content-Length above `max_body` (curl does for
large bodies) gets its 413 before it sends the body, instead of gunicorn's automatic
100 Continue: it then need not upload what will be refused.

The body's reader (`wsgi.input`) also turns gunicorn's errors for a malformed body (bad chunk
framing, a body shorter than its Content-Length) into the server's own 400, so the app answers
them in the client's rendering.
"""

from __future__ import annotations

import io
import socket
import threading
import time

from gunicorn import util as gunicorn_util
from gunicorn.http.errors import NoMoreData, ParseException
from gunicorn.workers.gthread import ThreadWorker

from occi import errors
from occi.settings import Settings
from rendering.base import safe_text


class Deadlines:
    """Sockets and the time by which their current read must be done; one thread per process
    shuts the read side of each socket whose time has come."""

    def __init__(self) -> None:
        self._due: dict[socket.socket, float] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, seconds: float) -> float:
        """Watch `sock` for `seconds` from now; returns the deadline (monotonic)."""
        due = time.monotonic() + seconds
        with self._cond:
            self._due[sock] = due
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="occi-read-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return due

    def disarm(self, sock: socket.socket) -> None:
        with self._cond:
            self._due.pop(sock, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                expired = [s for s, due in self._due.items() if due <= now]
                for s in expired:
                    del self._due[s]
                if not expired:
                    wait = min(self._due.values()) - now if self._due else None
                    self._cond.wait(wait)
                    continue
            for s in expired:
                try:
                    s.shutdown(socket.SHUT_RD)  # wakes the thread blocked in recv()
                except OSError:
                    pass  # closed meanwhile


class TimedInput:
    """`wsgi.input` under a deadline: a read cut off by it raises 408, a malformed body 400."""

    def __init__(self, inner, deadlines: Deadlines, sock: socket.socket, due: float, length):
        self._inner = inner
        self._deadlines = deadlines
        self._sock = sock
        self._due = due
        self._left = length  # bytes still expected, None for a chunked body

    def _call(self, method, *args):
        try:
            data = method(*args)
        except (NoMoreData, ParseException, OSError) as exc:
            self._check_time()
            if isinstance(exc, NoMoreData):
                raise errors.BadRequest(
                    "the request body ended before its announced length"
                ) from None
            if isinstance(exc, ParseException):
                raise errors.BadRequest(f"the request body is malformed: {exc}") from None
            raise
        if self._left is not None:
            self._left -= len(data)
        if not data or (self._left is not None and self._left <= 0):
            self._deadlines.disarm(self._sock)
        elif time.monotonic() >= self._due:
            self._check_time()
        return data

    def _check_time(self) -> None:
        if time.monotonic() >= self._due:
            raise errors.RequestTimeout(
                "the request body did not arrive in time; send it without pauses"
            )

    def read(self, size: int | None = None) -> bytes:
        data = self._call(self._inner.read, size)
        if size is not None and size > 0 and len(data) < size and self._left:
            self._check_time()  # short read inside the length: cut off by the deadline?
        return data

    def readline(self, size: int | None = None) -> bytes:
        return self._call(self._inner.readline, size)

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class OcciThreadWorker(ThreadWorker):
    """gunicorn's gthread worker with `read_timeout` on every request's headers and body, and
    a 413 sent before a body above `max_body` is, when the client waits for 100 Continue."""

    def init_process(self) -> None:
        settings = Settings.load()
        self.read_timeout = settings.read_timeout
        self.max_body = settings.max_body
        self.max_discard = settings.max_discard
        self.deadlines = Deadlines()
        self._refusing = threading.local()
        # requests gunicorn cannot parse (a header holding NUL, a request line too long) are
        # answered by gunicorn itself, in HTML; this process answers them like its own errors
        gunicorn_util.write_error = write_plain_error
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = self._guarded(self.wsgi)  # type: ignore[has-type]

    def handle(self, conn):
        if self.read_timeout > 0:
            self.deadlines.arm(conn.sock, self.read_timeout)
        try:
            return super().handle(conn)
        finally:
            self.deadlines.disarm(conn.sock)

    def handle_request(self, req, conn):
        self.deadlines.disarm(conn.sock)  # the headers are in
        # gunicorn answers `Expect: 100-continue` itself, before the app sees the request, so
        # curl would upload a body only to have it refused. One above max_body is refused
        # before it is sent: no 100 Continue, the app's 413 at once, and the connection
        # closes after it, since the client may send the body anyway.
        refuse = req._expected_100_continue and _length(req) > self.max_body
        if refuse:
            req._expected_100_continue = False
            req.must_close = True
        self._refusing.on = refuse
        try:
            return super().handle_request(req, conn)
        finally:
            self._refusing.on = False

    def _guarded(self, app):
        deadlines = self.deadlines
        seconds = self.read_timeout
        max_discard = self.max_discard
        refusing = self._refusing

        def guarded_app(environ, start_response):
            if getattr(refusing, "on", False):
                environ["wsgi.input"] = io.BytesIO()  # not sent: nothing to read or drop
                return app(environ, start_response)
            sock = environ.get("gunicorn.socket")
            length = environ.get("CONTENT_LENGTH")
            chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
            if sock is None or not (chunked or (length and length != "0")):
                return app(environ, start_response)
            due = deadlines.arm(sock, seconds) if seconds > 0 else float("inf")
            body = TimedInput(
                environ["wsgi.input"],
                deadlines,
                sock,
                due,
                None if chunked or not length.isdigit() else int(length),
            )
            environ["wsgi.input"] = body
            try:
                result = app(environ, start_response)
                # a body the answer did not need (a GET's, an OPTIONS') is read here, before
                # the answer goes out: gunicorn drops a keep-alive connection whose unread body
                # is over 64 KB after it has promised to keep it, and the client's next request
                # on it fails
                _drain(body, max_discard)
                return result
            finally:
                deadlines.disarm(sock)

        return guarded_app


def _drain(body: TimedInput, limit: int) -> None:
    """Read and drop what is left of a request body, up to `limit` bytes (beyond it, or when the
    body is malformed or too slow, gunicorn closes the connection after the answer)."""
    try:
        while limit > 0:
            chunk = body.read(min(limit, 1 << 16))
            if not chunk:
                return
            limit -= len(chunk)
    except (errors.OcciError, OSError):
        return


def write_plain_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's `util.write_error`, in OCCI's default rendering (text/plain, GFD.185) with the
    server's own Server header: the request could not be read, so neither could its Accept."""
    from occi.api.app import SERVER

    body = (safe_text(mesg or reason).rstrip("\n") + "\n").encode("utf-8")
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nServer: {SERVER}\r\nConnection: close\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, head.encode("latin-1") + body)


def _length(req) -> int:
    """The request's Content-Length, or -1 (none, chunked, or not a number)."""
    for name, value in req.headers:
        if name == "CONTENT-LENGTH":
            return int(value) if value.strip().isdigit() else -1
    return -1

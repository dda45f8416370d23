"""The bench baseline: a bare falcon app under gunicorn that answers with recorded responses
(status, headers, body bytes) from memory. The most a Python HTTP stack does on this machine.

Run: python -m bench.baseline --bind 127.0.0.1:PORT --workers N --responses FILE
FILE is a pickle of {key: (status, [(name, value), ...], body)} written by bench/run.py; the key
is the request's X-Bench-Scenario header, or "METHOD path?query" when there is none.
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import sys

import falcon

from occi.cli import gunicorn_config
from occi.settings import Settings

SCENARIO_HEADER = "X-Bench-Scenario"


class Recorded:
    def __init__(self, responses: dict[str, tuple[str, list[tuple[str, str]], bytes]]):
        self.responses = responses

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: object) -> None:
        key = req.get_header(SCENARIO_HEADER) or f"{req.method} {req.relative_uri}"
        if req.content_length:
            req.bounded_stream.read()
        found = self.responses.get(key)
        if found is None:
            resp.status = "404 Not Found"
            resp.data = b"no recorded response for " + key.encode()
            return
        status, headers, body = found
        resp.status = status
        for name, value in headers:
            resp.append_header(name, value)
        resp.data = body


def create_app(responses_file: str) -> falcon.App:
    with open(responses_file, "rb") as f:
        responses = pickle.load(f)
    app = falcon.App(media_type=None)
    app.add_sink(Recorded(responses), prefix="/")
    return app


def main(argv: list[str] | None = None) -> int:
    from gunicorn.app.base import BaseApplication

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bind", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--responses", required=True)
    args = p.parse_args(argv)

    # exactly the gunicorn settings `occi-server` runs under (worker class, threads, logs...)
    settings = dataclasses.replace(Settings.load(), bind=args.bind, workers=args.workers)
    config = gunicorn_config(settings)

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            for name, value in config.items():
                self.cfg.set(name, value)

        def load(self):
            return create_app(args.responses)

    _Gunicorn().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

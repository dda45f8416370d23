"""The bench baseline: a bare falcon app under gunicorn that answers with recorded responses
(status, headers, body bytes) from memory. The most a Python HTTP stack does on this machine.
With --writes, the write scenarios (create, action) first do in the database what a bare
SQLAlchemy Core app would do for them (bench/write_baseline.py), then answer the recorded bytes
(a create with its own Location).

Run: python -m bench.baseline --bind 127.0.0.1:PORT --workers N --responses FILE [--writes FILE]
FILE is a pickle of {key: (status, [(name, value), ...], body)} written by bench/run.py; the key
is the request's X-Bench-Scenario header, or "METHOD path?query" when there is none. The writes
file is the JSON of bench.write_baseline.record_templates; the database is $OCCI_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import sys

import falcon

from bench.write_baseline import Writes
from occi.cli import gunicorn_config
from occi.settings import Settings

SCENARIO_HEADER = "X-Bench-Scenario"


class Recorded:
    def __init__(
        self,
        responses: dict[str, tuple[str, list[tuple[str, str]], bytes]],
        writes: Writes | None = None,
    ):
        self.responses = responses
        self.writes = writes

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
        location = None
        if self.writes is not None and key.startswith("create/"):
            location = req.prefix + self.writes.do_create()
        elif self.writes is not None and key.startswith("action/"):
            self.writes.do_action(req.path.rstrip("/").rsplit("/", 1)[1])
        resp.status = status
        for name, value in headers:
            if location is not None and name.lower() == "location":
                value = location
            resp.append_header(name, value)
        resp.data = body


def create_app(responses_file: str, writes_file: str | None = None) -> falcon.App:
    with open(responses_file, "rb") as f:
        responses = pickle.load(f)
    writes = None
    if writes_file:
        with open(writes_file) as f:
            writes = Writes(os.environ["OCCI_DATABASE_URL"], json.load(f))
    app = falcon.App(media_type=None)
    app.add_sink(Recorded(responses, writes), prefix="/")
    return app


def main(argv: list[str] | None = None) -> int:
    from gunicorn.app.base import BaseApplication

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bind", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--responses", required=True)
    p.add_argument("--writes", help="write templates (JSON): create and action touch the database")
    args = p.parse_args(argv)

    # exactly the gunicorn settings `occi-server` runs under (worker class, threads, logs...)
    settings = dataclasses.replace(Settings.load(), bind=args.bind, workers=args.workers)
    config = gunicorn_config(settings)

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            for name, value in config.items():
                self.cfg.set(name, value)

        def load(self):
            return create_app(args.responses, args.writes)

    _Gunicorn().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

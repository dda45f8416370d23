"""`python -m tests.xapi --port N`: the test xapi server on its own, printing its URL, until
interrupted (point the OCCI server at it with OCCI_BACKEND=xenserver, OCCI_XENSERVER_URL...)."""

from __future__ import annotations

import argparse
import logging
import sys

from tests.xapi.server import Xapi, XapiHTTPServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.xapi", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    parser.add_argument("--user", default="root", help="the user to log in as (root)")
    parser.add_argument("--password", default="xapi-test", help="its password (xapi-test)")
    parser.add_argument(
        "--task-delay",
        type=float,
        default=0.0,
        help="seconds each Async task stays pending before it runs",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    server = XapiHTTPServer(
        Xapi(user=args.user, password=args.password, task_delay=args.task_delay),
        args.host,
        args.port,
    )
    print(server.url, flush=True)
    print(
        f"xapi test pool: user {args.user}, password {args.password}, "
        "SR 'NFS shared storage', hosts xen-host-1 and xen-host-2",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

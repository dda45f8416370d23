"""Concurrent PUTs of one new id, through the real app on SQLite and PostgreSQL: each is a
create-or-replace. One creates (201), the others replace what it stored (200); none is told
that the id is taken."""

from __future__ import annotations

import threading

from falcon import testing

from occi.api.wsgi import build
from occi.settings import Settings
from tests.api.conftest import INFRA, Api

CLIENTS = 6
ROUNDS = 4


def race(api: Api, path: str) -> dict[int, tuple[int, str]]:
    """CLIENTS threads PUT `path` at the same moment; their answers by client number."""
    barrier = threading.Barrier(CLIENTS, timeout=60)
    answers: dict[int, tuple[int, str]] = {}

    def client(n: int) -> None:
        doc = {"kind": INFRA + "compute", "attributes": {"occi.compute.hostname": f"h{n}"}}
        barrier.wait()
        r = api.put(path, doc)
        answers[n] = (r.status_code, r.text)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_concurrent_puts_of_one_new_id_all_succeed(db_url):
    app, service = build(
        Settings.from_mapping({"database_url": db_url, "auth": "none"}), upgrade=True
    )
    api = Api(testing.TestClient(app), service)
    try:
        for round_ in range(ROUNDS):
            path = f"/compute/raced-{round_}"
            answers = race(api, path)
            statuses = sorted(code for code, _ in answers.values())
            assert statuses == [200] * (CLIENTS - 1) + [201], answers
            stored = api.get(path).json["attributes"]["occi.compute.hostname"]
            assert stored in {f"h{n}" for n in range(CLIENTS)}
        assert api.count("/compute/") == ROUNDS
    finally:
        if service.runner is not None:
            service.runner.stop()
        service.store.close()
        service.backend.close()

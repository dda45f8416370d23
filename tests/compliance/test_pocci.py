"""The independent OCCI compliance tool pOCCI against the real server (gunicorn, SQLite),
once in text/plain and once in text/occi. pOCCI is prepared once into a cache directory
(tests/compliance/pocci.py); failing to get it fails the test, it never skips."""

from __future__ import annotations

import re

import pytest

from tests.api.test_gunicorn import Server
from tests.compliance import pocci as pocci_mod

RESULT = re.compile(r"^OCCI/(\S+)\s+(OK|FAIL)\s*$", re.MULTILINE)


@pytest.fixture(scope="session")
def pocci() -> pocci_mod.Pocci:
    try:
        return pocci_mod.prepare()
    except pocci_mod.PocciUnavailable as exc:
        error = str(exc)
    pytest.fail(
        f"pOCCI {pocci_mod.VERSION} could not be prepared in {pocci_mod.cache_dir()} "
        f"(set OCCI_POCCI_DIR to use another directory): {error}",
        pytrace=False,
    )


@pytest.fixture
def server(tmp_path):
    srv = Server(f"sqlite:///{tmp_path}/occi.db", tmp_path)  # a fresh database for each run
    yield srv
    srv.stop()


@pytest.mark.server
@pytest.mark.parametrize("mimetype", ["text/plain", "text/occi"])
def test_pocci_compliance(pocci, server, mimetype):
    p = pocci.run(server.url, mimetype)
    report = (
        f"pOCCI -m {mimetype} exited {p.returncode}\n--- stdout\n{p.stdout}"
        f"--- stderr\n{p.stderr}--- server log (tail)\n{server.output()}"
    )
    results = dict(RESULT.findall(p.stdout))
    missing = [t for t in pocci_mod.TESTS if t not in results]
    failed = [t for t in pocci_mod.TESTS if results.get(t) == "FAIL"]
    assert not missing and not failed and p.returncode == 0, (
        f"missing: {missing}, failed: {failed}\n{report}"
    )

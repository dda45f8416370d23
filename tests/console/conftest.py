"""The console's fixtures: ONE real server (gunicorn, a slow simulator so that states visibly
change) and ONE headless Chromium (Debian's, driven by Playwright) for the whole session, and
logged-in browser pages for the first-start users admin and demo."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.live import ROOT, LiveServer
from tests.oidc_issuer import OidcIssuer

CHROMIUM = "/usr/bin/chromium"
#: where the tests leave screenshots of the main views: build/screenshots/ (not tracked), so a
#: test run leaves the checkout as it was; OCCI_SCREENSHOTS=docs/screenshots refreshes the two
#: the README shows (dashboard.png, instances.png, committed)
SHOTS = Path(os.environ.get("OCCI_SCREENSHOTS", ROOT / "build" / "screenshots"))
#: what the browser waits for at most (a state change takes about simulator_pending seconds)
WAIT_MS = 30_000


@dataclass
class Cloud:
    url: str
    passwords: dict[str, str]
    server: LiveServer

    @property
    def console(self) -> str:
        return self.url + "/console"

    def api(self, user: str) -> tuple[str, str]:
        """Basic credentials of a first-start user for the OCCI API."""
        return (user, self.passwords[user])

    def session(self, user: str) -> tuple[requests.Session, str]:
        """A plain HTTP client logged into the console, and its CSRF token."""
        http = requests.Session()
        page = http.get(self.console + "/login", timeout=10)
        token = re.search(r'name="login_token" value="([^"]+)"', page.text)
        assert token, page.text
        r = http.post(
            self.console + "/login",
            data={
                "login_token": token.group(1),
                "username": user,
                "password": self.passwords[user],
            },
            timeout=30,
        )
        assert r.status_code == 200 and r.url.endswith("/console/"), (r.status_code, r.url)
        csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
        assert csrf, r.text
        return http, csrf.group(1)


#: the console's client at the test issuer
CLIENT_ID, CLIENT_SECRET = "occi-console", "console-secret"
#: who logs in at the test issuer: erin, operator of the project demo by entitlement
ERIN = {
    "sub": "erin-subject",
    "preferred_username": "erin",
    "eduperson_entitlement": ["urn:mace:egi.eu:group:demo:role=vm_operator#aai.egi.eu"],
}


@pytest.fixture(scope="session")
def issuer() -> Iterator[OidcIssuer]:
    """An OpenID Connect issuer that approves every browser login at once, as erin."""
    made = OidcIssuer()
    made.clients[CLIENT_ID] = CLIENT_SECRET
    made.login_claims = dict(ERIN)
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="session")
def cloud(tmp_path_factory, issuer) -> Iterator[Cloud]:
    """The server: basic, token and OIDC authentication (the console logs in with passwords
    or at the test issuer), two simulated hosts, platform tasks that take 1.5 s (create,
    start, stop), requests that wait 0.2 s for their jobs."""
    tmp = tmp_path_factory.mktemp("console")
    server = LiveServer(
        tmp,
        auth="basic,token,oidc",
        oidc_issuers=issuer.url,
        oidc_audience="occi",
        console_oidc_client_id=CLIENT_ID,
        console_oidc_client_secret=CLIENT_SECRET,
        simulator_hosts="hv1:8:16,hv2:8:16",
        simulator_pending="1.5",
        job_wait="0.2",
        health="/console/login",
    )
    try:
        pairs = dict(
            line.split("=", 1)
            for line in (tmp / "occi-credentials").read_text().splitlines()
            if "=" in line and not line.startswith("#")
        )
        passwords = {"admin": pairs["OCCI_ADMIN_PASSWORD"], "demo": pairs["OCCI_DEMO_PASSWORD"]}
        yield Cloud(server.url, passwords, server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session (Playwright cannot download its own here)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "make test installs Debian's chromium"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def log_in(browser, cloud: Cloud, user: str):
    """A fresh browser context logged in as `user`: (context, page on the dashboard). Every
    dialog (hx-confirm) is accepted; every console message is kept on `page.messages`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("dialog", lambda d: d.accept())
    page.messages = messages
    page.goto(cloud.console + "/")
    assert page.url.endswith("/console/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", cloud.passwords[user])
    page.click("#login")
    page.wait_for_url(cloud.console + "/")
    return context, page


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

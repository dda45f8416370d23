"""The console in a real headless Chromium against a real server: log in, create an instance
through the wizard and watch it become active without a reload, stop and delete it while the
quota bar follows, put a host into maintenance as an administrator, and see user data shown as
text. Screenshots of the main views are left in build/screenshots/ (see conftest.SHOTS)."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.console.conftest import log_in, shot

pytestmark = pytest.mark.server

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
JSON = "application/occi+json"


def _quota(page, resource: str) -> str:
    return page.inner_text(f"#quota-{resource} .used")


def _quota_after(page, cloud, resource: str) -> int:
    """The dashboard's use of a quota now (the page is left on the dashboard)."""
    page.goto(cloud.console + "/")
    return int(_quota(page, resource))


def test_a_wrong_password_is_refused_and_a_login_sets_a_strict_cookie(browser, cloud):
    context = browser.new_context()
    page = context.new_page()
    page.goto(cloud.console + "/login")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "not the password")
    page.click("#login")
    assert "wrong user name or password" in page.inner_text("#flash")
    assert [c["name"] for c in context.cookies() if c["name"] == "occi_console"] == []
    context.close()

    context, page = log_in(browser, cloud, "demo")
    try:
        (cookie,) = [c for c in context.cookies() if c["name"] == "occi_console"]
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
        assert cookie["secure"] is False  # plain HTTP here; Secure behind TLS (test_http)
        assert cookie["path"] == "/console"
        assert page.inner_text("#project") == "demo"
        page.click("#logout")
        page.wait_for_url(cloud.console + "/login")
        page.goto(cloud.console + "/instances")
        assert page.url.endswith("/console/login")  # the session is gone
    finally:
        context.close()


def test_an_instance_from_the_wizard_to_its_deletion(browser, cloud):
    """The admin sets the demo project's instance quota; demo creates an instance through the
    wizard, sees it become active with no reload, stops and deletes it; the bar follows."""
    admin, page = log_in(browser, cloud, "admin")
    try:
        page.goto(cloud.console + "/admin/quotas?project=demo")
        page.fill("#limit-instances", "10")
        page.fill("#limit-cores", "20")
        page.click("#save-quotas")
        page.wait_for_url("**/admin/quotas?project=demo")
        assert page.input_value("#limit-instances") == "10"
    finally:
        admin.close()

    context, page = log_in(browser, cloud, "demo")
    try:
        before = int(_quota(page, "instances"))
        cores = int(_quota(page, "cores"))
        assert page.inner_text("#quota-instances .total") == "10"
        # a network and a volume to give the instance
        page.goto(cloud.console + "/networks")
        page.fill("#new-network input[name=title]", "wiz-net")
        page.fill("#new-network input[name=address]", "10.9.0.0/24")
        page.click("#new-network button")
        page.wait_for_selector("#networks tr:has-text('wiz-net')")
        assert "10.9.0.0/24" in page.inner_text("#networks")
        page.goto(cloud.console + "/volumes")
        page.fill("#new-volume input[name=title]", "wiz-vol")
        page.fill("#new-volume input[name=size]", "5")
        page.click("#new-volume button")
        page.wait_for_selector("#volumes tr:has-text('wiz-vol')")
        assert _quota_after(page, cloud, "volumes") >= 1
        page.goto(cloud.console + "/instances/new")
        page.fill("#title", "wizard-vm")
        page.check("input[name=image][value$='#debian12']")
        page.check("input[name=size][data-term=small]")
        page.fill("#ssh_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG0 demo@laptop")
        page.fill("#user_data", "#cloud-config\npackages: [nginx]\n")
        page.select_option("#zone", index=0)
        page.select_option("#network", label="wiz-net (10.9.0.0/24)")
        page.select_option("#volume", label="attach wiz-vol (5.0 GB)")
        # the summary follows the form (an htmx GET on each change)
        expect(page.locator("#summary-size")).to_contain_text("small")
        assert "wizard-vm" in page.inner_text("#summary-title")
        expect(page.locator("#summary-network")).to_have_text("wiz-net")
        shot(page, "wizard")
        page.click("#create")
        page.wait_for_url(cloud.console + "/instances")
        row = page.locator("tr", has_text="wizard-vm")
        assert row.get_attribute("class") == "busy"  # create and start are under way
        page.evaluate("window.notReloaded = true")
        # the row polls itself until its work is done: active, with no reload of the page
        page.wait_for_selector("tr[data-state=active]:has-text('wizard-vm'):not(.busy)")
        assert page.evaluate("window.notReloaded === true")
        assert "small" in row.inner_text() and "Debian" in row.inner_text()
        shot(page, "instances")
        page.goto(cloud.console + "/")
        assert int(_quota(page, "instances")) == before + 1
        assert page.get_attribute("#quota-instances progress", "value") == str(before + 1)
        assert int(_quota(page, "cores")) == cores + 1  # a small instance: one core
        shot(page, "dashboard")

        page.goto(cloud.console + "/instances")
        row = page.locator("tr", has_text="wizard-vm")
        row.locator("button[value=stop]").click()
        page.wait_for_selector("tr[data-state=inactive]:has-text('wizard-vm'):not(.busy)")
        row.locator("button[value=delete]").click()  # hx-confirm: accepted
        page.wait_for_selector("tr:has-text('wizard-vm')", state="detached")
        page.goto(cloud.console + "/")
        assert int(_quota(page, "instances")) == before
        assert not [m for m in page.messages if "Content Security Policy" in m], page.messages
    finally:
        context.close()


def test_an_admin_puts_a_host_into_maintenance(browser, cloud):
    http = requests.post(
        cloud.url + "/compute/",
        json={"kind": INFRA + "compute", "attributes": {"occi.core.title": "on-a-host"}},
        headers={"Content-Type": JSON, "Accept": JSON},
        auth=cloud.api("demo"),
        timeout=30,
    )
    assert http.status_code == 201, http.text
    context, page = log_in(browser, cloud, "admin")
    try:
        assert page.locator("#capacity").count() == 1  # capacity bars for administrators
        page.goto(cloud.console + "/admin/hosts")
        busy = "hv1" if page.inner_text("#host-hv1 .vms") != "0" else "hv2"
        other = "hv2" if busy == "hv1" else "hv1"
        shot(page, "hosts")
        page.click(f"#host-{busy} button[value=maintenance]")
        page.wait_for_url("**/admin/hosts")
        assert page.get_attribute(f"#host-{busy}", "data-admin-state") in (
            "prepare-for-maintenance",
            "maintenance",
        )
        # its compute moves to the other host; then the host is in maintenance
        for _ in range(60):
            if page.get_attribute(f"#host-{busy}", "data-admin-state") == "maintenance":
                break
            page.wait_for_timeout(500)
            page.reload()
        assert page.get_attribute(f"#host-{busy}", "data-admin-state") == "maintenance"
        assert page.inner_text(f"#host-{busy} .vms") == "0"
        assert page.inner_text(f"#host-{other} .vms") != "0"
        page.click(f"#host-{busy} button[value=cancel-maintenance]")
        page.wait_for_url("**/admin/hosts")
        assert page.get_attribute(f"#host-{busy}", "data-admin-state") == "enabled"
    finally:
        context.close()


def test_user_data_is_shown_as_text(browser, cloud):
    title = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    r = requests.post(
        cloud.url + "/compute/",
        json={"kind": INFRA + "compute", "attributes": {"occi.core.title": title}},
        headers={"Content-Type": JSON, "Accept": JSON},
        auth=cloud.api("demo"),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    context, page = log_in(browser, cloud, "demo")
    try:
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        page.goto(cloud.console + "/instances")
        cells = page.locator("#instances td.title").all_inner_texts()
        assert title in cells
        assert dialogs == []
        assert page.locator("#instances td.title script").count() == 0
        assert page.locator("#instances td.title img").count() == 0
    finally:
        context.close()


def test_an_admin_makes_a_user_who_then_works_in_two_projects(browser, cloud):
    """Projects, users and roles from the admin pages; the new user logs in, switches to the
    project where they only read, and is refused a change there by the service."""
    context, page = log_in(browser, cloud, "admin")
    try:
        page.goto(cloud.console + "/admin/projects")
        page.fill("#new-project input[name=name]", "team2")
        page.click("#new-project button")
        page.wait_for_url("**/admin/projects")
        assert "team2" in page.inner_text("#projects")
        page.goto(cloud.console + "/admin/users")
        page.fill("#new-user input[name=name]", "carol")
        page.fill("#new-user input[name=password]", "carol-password-1")
        page.click("#new-user button")
        page.wait_for_url("**/admin/users")
        assert "carol" in page.inner_text("#users")
        page.goto(cloud.console + "/admin/roles")
        for role, project in (("member", "demo"), ("reader", "team2")):
            page.select_option("#grant select[name=user]", "carol")
            page.select_option("#grant select[name=role]", role)
            page.select_option("#grant select[name=project]", project)
            page.click("#grant button")
            page.wait_for_url("**/admin/roles")
        roles = page.inner_text("#roles")
        assert "member" in roles and "reader" in roles and "team2" in roles
    finally:
        context.close()

    cloud.passwords["carol"] = "carol-password-1"
    context, page = log_in(browser, cloud, "carol")
    try:
        assert page.inner_text("#project") == "demo"  # the first of theirs by name
        page.select_option("#switch-project select", label="team2")
        page.click("#switch-project button")
        page.wait_for_url(cloud.console + "/")
        assert page.inner_text("#project") == "team2"
        page.goto(cloud.console + "/volumes")
        page.fill("#new-volume input[name=title]", "not-allowed")
        page.click("#new-volume button")
        assert "may only read" in page.inner_text("#error-message")
    finally:
        context.close()


def _api_state(cloud, location: str) -> str:
    r = requests.get(cloud.url + location, headers={"Accept": JSON}, auth=cloud.api("demo"),
                     timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    return str(r.json()["attributes"]["occi.compute.state"])


def test_an_action_the_state_no_longer_allows_is_told_in_the_page(browser, cloud):
    """A stale page offers start; the instance was started meanwhile over the API: the
    service's 409 is shown in the page's message area, and the page stays."""
    r = requests.post(
        cloud.url + "/compute/",
        json={"kind": INFRA + "compute", "attributes": {"occi.core.title": "stale-page"}},
        headers={"Content-Type": JSON, "Accept": JSON},
        auth=cloud.api("demo"),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    location = "/compute/" + r.json()["id"]
    context, page = log_in(browser, cloud, "demo")
    try:
        page.goto(cloud.console + "/instances")
        page.wait_for_selector("tr[data-state=inactive]:has-text('stale-page'):not(.busy)")
        r = requests.post(cloud.url + location + "?action=start", headers={"Accept": JSON},
                          auth=cloud.api("demo"), timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        for _ in range(120):
            if _api_state(cloud, location) == "active":
                break
            page.wait_for_timeout(250)
        assert _api_state(cloud, location) == "active"
        page.evaluate("window.notReloaded = true")
        page.locator("tr", has_text="stale-page").locator("button[value=start]").click()
        page.wait_for_selector("#flash:not(:empty)")
        assert "start" in page.inner_text("#flash") and "active" in page.inner_text("#flash")
        assert page.evaluate("window.notReloaded === true")
    finally:
        context.close()


def test_a_login_at_the_identity_provider(browser, cloud, issuer):
    """OpenID Connect: the console sends the browser to the issuer, exchanges the code it
    brings back for a token, and erin works in the project her entitlement names."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(cloud.console + "/login")
        page.click("#login-oidc")
        page.wait_for_url(cloud.console + "/")
        assert page.inner_text("#project") == "demo"
        assert "erin" in page.inner_text("nav")
        page.goto(cloud.console + "/instances")  # the session holds her entitlement's role
        assert page.url.endswith("/console/instances") and page.locator("#instances").count() == 1
        (cookie,) = [c for c in context.cookies() if c["name"] == "occi_console"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    finally:
        context.close()
    # a code brought back to a browser that did not start the login is refused
    r = requests.get(cloud.console + "/login/oidc/callback?code=x&state=y", timeout=10)
    assert r.status_code == 403 and "state" in r.text

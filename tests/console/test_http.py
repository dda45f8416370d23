"""The console over plain HTTP against the same real server: what protects it (the CSRF token,
the cookie's attributes, the security headers), that the APIs never take its cookie, and that
its answers to bad input and to another project's entities are the service's."""

from __future__ import annotations

import re
import time

import pytest
import requests

from occi.console.web import CSP

pytestmark = pytest.mark.server

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
JSON = "application/occi+json"


def _volumes(http: requests.Session, cloud) -> str:
    return http.get(cloud.console + "/volumes", timeout=10).text


def test_a_change_without_the_csrf_token_is_refused(cloud):
    http, csrf = cloud.session("demo")
    url = cloud.console + "/volumes"
    for form in (
        {"title": "no-token", "size": "1"},
        {"title": "no-token", "size": "1", "csrf": "x" * 43},
    ):
        r = http.post(url, data=form, allow_redirects=False, timeout=10)
        assert r.status_code == 403, r.text
        assert "CSRF token" in r.text
    assert "no-token" not in _volumes(http, cloud)
    # the token in the htmx header is as good as the form field
    r = http.post(url, data={"title": "by-header", "size": "2"}, headers={"X-CSRF-Token": csrf},
                  allow_redirects=False, timeout=30)  # fmt: skip
    assert r.status_code == 303 and r.headers["Location"] == "/console/volumes"
    r = http.post(url, data={"title": "by-field", "size": "3", "csrf": csrf},
                  allow_redirects=False, timeout=30)  # fmt: skip
    assert r.status_code == 303
    page = _volumes(http, cloud)
    assert "by-header" in page and "by-field" in page
    # the audit log has the refusals and the creates, with the volume's own path
    events = http.get(cloud.console + "/events", timeout=10).text
    assert re.search(r"console create storage</td><td>/storage/[0-9a-f-]+</td><td>303", events)
    assert "console volumes</td><td>/console/volumes</td><td>403" in events
    # another session's token is not this one's
    other, other_csrf = cloud.session("demo")
    assert other_csrf != csrf
    r = http.post(url, data={"title": "crossed", "size": "1", "csrf": other_csrf}, timeout=10)
    assert r.status_code == 403


def test_the_apis_never_accept_the_console_cookie(cloud):
    http, _ = cloud.session("admin")
    cookie = {"occi_console": http.cookies["occi_console"]}
    for method, path in (("GET", "/compute/"), ("GET", "/-/"), ("GET", "/-/admin/hosts"),
                         ("POST", "/compute/")):  # fmt: skip
        r = requests.request(method, cloud.url + path, cookies=cookie, timeout=10,
                             headers={"Accept": JSON})  # fmt: skip
        assert r.status_code == 401, (path, r.status_code)
    # the EC2 front (where served) signs requests with SigV4 and has no use for a cookie
    r = requests.get(cloud.url + "/ec2/?Action=DescribeInstances&Version=2016-11-15",
                     cookies=cookie, timeout=10)  # fmt: skip
    assert 400 <= r.status_code < 500 and "reservationSet" not in r.text, r.status_code
    # a path that only begins like the console's is the API's
    r = requests.get(cloud.url + "/consoles/", cookies=cookie, timeout=10)
    assert r.status_code == 401
    r = requests.get(cloud.url + "/console", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "/console/"
    # while the same cookie opens the console
    assert (
        requests.get(cloud.console + "/admin/hosts", cookies=cookie, timeout=10).status_code == 200
    )


def test_pages_carry_the_security_headers_and_the_cookie_is_secure_behind_tls(cloud):
    http, _ = cloud.session("demo")
    for path in ("/", "/instances", "/instances/new", "/login", "/nowhere"):
        r = http.get(cloud.console + path, timeout=10)
        assert r.headers["Content-Security-Policy"] == CSP, path
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        # no inline script, no event handler attribute: every script is a file of ours
        assert re.findall(r"<script(?![^>]*\ssrc=)", r.text) == [], path
        assert re.findall(r"<[^>]*\son[a-z]+\s*=", r.text) == [], path
    assert http.get(cloud.console + "/nowhere", timeout=10).status_code == 404
    # behind a TLS proxy gunicorn trusts (127.0.0.1): the cookie is Secure
    r = requests.get(cloud.console + "/login", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert "; Secure" in r.headers["Set-Cookie"] and "SameSite=Strict" in r.headers["Set-Cookie"]
    r = requests.get(cloud.console + "/login", timeout=10)
    assert "Secure" not in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    js = requests.get(cloud.console + "/static/htmx.min.js", timeout=10)
    assert js.status_code == 200 and js.headers["Content-Type"].startswith("application/javascript")
    assert requests.get(cloud.console + "/static/web.py", timeout=10).status_code == 404
    r = requests.get(cloud.console + "/static/..%2Fweb.py", timeout=10)
    assert r.status_code in (404, 405) and "import" not in r.text


def test_no_session_no_console(cloud):
    r = requests.get(cloud.console + "/instances", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "/console/login"
    r = requests.get(cloud.console + "/instances", headers={"HX-Request": "true"}, timeout=10)
    assert r.status_code == 401 and r.headers["HX-Redirect"] == "/console/login"
    r = requests.post(cloud.console + "/volumes", data={"title": "x", "size": "1"}, timeout=10)
    assert r.status_code == 401
    http, csrf = cloud.session("demo")
    old = http.cookies["occi_console"]
    r = http.post(cloud.console + "/logout", data={"csrf": csrf}, allow_redirects=False, timeout=10)
    assert r.status_code == 303
    r = requests.get(cloud.console + "/", cookies={"occi_console": old}, allow_redirects=False,
                     timeout=10)  # fmt: skip
    assert r.status_code == 303 and r.headers["Location"] == "/console/login"


def test_the_service_decides_what_a_member_may_do(cloud):
    """Another project's instance is not found; administration is refused; bad input is a
    4xx with a message, never a 500."""
    r = requests.post(
        cloud.url + "/compute/",
        json={"kind": INFRA + "compute", "attributes": {"occi.core.title": "admins-own"}},
        headers={"Content-Type": JSON, "Accept": JSON},
        auth=cloud.api("admin"),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    theirs = r.json()["id"]
    http, csrf = cloud.session("demo")
    r = http.post(cloud.console + f"/instances/{theirs}/stop", data={"csrf": csrf}, timeout=10)
    assert r.status_code == 404
    r = http.post(cloud.console + f"/instances/{theirs}/delete", data={"csrf": csrf}, timeout=10)
    assert r.status_code == 404
    assert "admins-own" not in http.get(cloud.console + "/instances", timeout=10).text
    r = http.post(cloud.console + "/admin/hosts/hv1/maintenance", data={"csrf": csrf}, timeout=10)
    assert r.status_code == 403 and "only administrators" in r.text
    r = http.post(cloud.console + "/admin/users", data={"csrf": csrf, "name": "eve",
                                                        "password": "long-enough"}, timeout=10)  # fmt: skip
    assert r.status_code == 403
    for form, status in (
        ({"title": "v", "size": "many"}, 400),
        ({"title": "v", "size": "0"}, 400),
        ({"title": "x" * 300, "size": "1"}, 400),
        ({"title": "", "size": "1"}, 400),
    ):
        r = http.post(cloud.console + "/volumes", data={**form, "csrf": csrf}, timeout=10)
        assert r.status_code == status, (form, r.status_code)
    r = http.post(cloud.console + "/instances/new", data={"csrf": csrf, "title": "t",
                  "image": "nope", "size": "nope"}, timeout=10)  # fmt: skip
    assert r.status_code == 400 and "there is no image" in r.text
    r = http.post(cloud.console + "/instances/x/explode", data={"csrf": csrf}, timeout=10)
    assert r.status_code == 400
    r = http.post(cloud.console + "/volumes", data={"csrf": csrf, "title": "x" * 300_000},
                  timeout=10)  # fmt: skip
    assert r.status_code == 413


def test_a_saved_image_is_listed_as_the_project_s_and_deleted_there(cloud):
    auth, headers = cloud.api("demo"), {"Content-Type": JSON, "Accept": JSON}
    r = requests.post(cloud.url + "/compute/", auth=auth, headers=headers, timeout=30,
                      json={"kind": INFRA + "compute", "attributes": {"occi.core.title": "src"}})  # fmt: skip
    assert r.status_code == 201, r.text
    location = "/compute/" + r.json()["id"]
    save = {"action": INFRA.replace("#", "/compute/action#") + "save",
            "attributes": {"name": "golden"}}  # fmt: skip
    http, csrf = cloud.session("demo")
    for _ in range(120):  # the create is a platform task: save once it is done
        r = requests.post(cloud.url + location + "?action=save", json=save, auth=auth,
                          headers=headers, timeout=30)  # fmt: skip
        if r.status_code == 200:
            break
        assert r.status_code == 409, r.text
        time.sleep(0.25)
    row = ""
    for _ in range(120):  # the save is a platform task too
        page = http.get(cloud.console + "/images", timeout=10).text
        found = re.search(r"<tr><td>golden</td>.*?</tr>", page, re.S)
        if found:
            row = found.group(0)
            break
        time.sleep(0.25)
    assert "saved" in row and "delete" in row, page
    assert re.search(r"<tr><td>debian12</td><td>[^<]*</td><td>provider</td>\s*<td></td>", page)
    image = re.search(r'name="image" value="([^"]+)"', row).group(1)
    r = http.post(cloud.console + "/images/delete", data={"csrf": csrf, "image": image},
                  allow_redirects=False, timeout=30)  # fmt: skip
    assert r.status_code == 303, r.text
    assert "<td>golden</td>" not in http.get(cloud.console + "/images", timeout=10).text
    r = http.post(cloud.console + "/images/delete",
                  data={"csrf": csrf, "image": "http://occi.simulator.local/os_tpl#debian12"},
                  timeout=30)  # fmt: skip
    assert r.status_code == 403  # the provider's: not the project's to delete


def test_a_revoked_role_bites_the_open_session_at_once(cloud):
    admin, admin_csrf = cloud.session("admin")
    for path, form in (
        ("/admin/users", {"name": "dave", "password": "dave-password-1"}),
        ("/admin/roles", {"user": "dave", "role": "member", "project": "demo"}),
    ):
        r = admin.post(cloud.console + path, data={**form, "csrf": admin_csrf},
                       allow_redirects=False, timeout=30)  # fmt: skip
        assert r.status_code == 303, r.text
    cloud.passwords["dave"] = "dave-password-1"
    dave, _ = cloud.session("dave")
    assert dave.get(cloud.console + "/instances", timeout=10).status_code == 200
    r = admin.post(cloud.console + "/admin/roles", data={"user": "dave", "role": "member",
                   "project": "demo", "revoke": "1", "csrf": admin_csrf}, timeout=30)  # fmt: skip
    assert r.status_code == 200
    r = dave.get(cloud.console + "/instances", timeout=10)
    assert r.status_code == 403 and "no role" in r.text

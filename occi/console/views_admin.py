"""The console's administration pages: hosts (capacity, state, maintenance), projects, users,
roles and quotas. The inventory and identity services refuse anyone but an administrator;
these views only show what they answer."""

from __future__ import annotations

from urllib.parse import quote

from occi.console import describe
from occi.console.web import Call
from occi.identity.model import PROJECT_ROLES, QUOTA_RESOURCES, ROLES, UNLIMITED
from occi.inventory.service import HOST_ACTIONS

#: a quota's largest value (bounded input)
MAX_QUOTA = 1 << 40


def hosts(call: Call) -> None:
    assert call.ctx is not None
    found = call.console.inventory.list_hosts(call.ctx)
    call.render(
        "admin_hosts.html",
        hosts=found,
        zones=describe.capacity(found, "zone"),
        clusters=describe.capacity(found, "cluster"),
        actions=HOST_ACTIONS,
    )


def host_action(call: Call) -> None:
    assert call.ctx is not None
    action = call.params["action"]
    call.audit(f"{action[:40]} host")
    call.console.inventory.host_action(call.ctx, call.params["name"], action)
    call.redirect("/admin/hosts")


def projects(call: Call) -> None:
    assert call.ctx is not None
    identity = call.console.identity
    if call.req.method == "POST":
        name = call.field("name", 64, required=True)
        if call.form.get("delete") == "1":
            call.audit("delete project")
            identity.delete_project(call.ctx, name)
        else:
            call.audit("create project")
            identity.create_project(call.ctx, name)
        return call.redirect("/admin/projects")
    call.render("admin_projects.html", projects=identity.projects(call.ctx))


def users(call: Call) -> None:
    assert call.ctx is not None
    identity = call.console.identity
    if call.req.method == "POST":
        name = call.field("name", 64, required=True)
        if call.form.get("delete") == "1":
            call.audit("delete user")
            identity.delete_user(call.ctx, name)
        else:
            call.audit("create user")
            identity.create_user(call.ctx, name, call.form.get("password", ""))
        return call.redirect("/admin/users")
    call.render("admin_users.html", users=identity.users(call.ctx))


def roles(call: Call) -> None:
    assert call.ctx is not None
    identity = call.console.identity
    if call.req.method == "POST":
        user = call.field("user", 64, required=True)
        role = call.field("role", 16, required=True)
        project = call.field("project", 64) or None
        if call.form.get("revoke") == "1":
            call.audit("revoke role")
            identity.revoke(call.ctx, user, project, role)
        else:
            call.audit("grant role")
            identity.grant(call.ctx, user, project, role)
        return call.redirect("/admin/roles")
    call.render(
        "admin_roles.html",
        assignments=identity.roles(call.ctx),
        users=identity.users(call.ctx),
        projects=identity.projects(call.ctx),
        roles=ROLES,
        project_roles=PROJECT_ROLES,
    )


def quotas(call: Call) -> None:
    assert call.ctx is not None
    identity = call.console.identity
    if call.req.method == "POST":
        call.audit("set quota")
        project = call.field("project", 64, required=True)
        current = {q.resource: q.limit for q in identity.quotas(call.ctx, project)}
        for resource in QUOTA_RESOURCES:  # only those changed: the others keep their source
            if call.form.get(resource, "").strip():
                limit = call.number(resource, UNLIMITED, MAX_QUOTA)
                if limit != current.get(resource):
                    identity.set_quota(call.ctx, project, resource, limit)
        return call.redirect(f"/admin/quotas?project={quote(project, safe='')}")
    projects = identity.projects(call.ctx)
    chosen = call.req.get_param("project") or (projects[0].name if projects else "")
    limits = identity.quotas(call.ctx, chosen) if chosen else []
    call.render(
        "admin_quotas.html",
        projects=projects,
        chosen=chosen,
        limits=limits,
        labels=describe.QUOTA_LABELS,
    )

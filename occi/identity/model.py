"""The identity model: plain dataclasses for projects, users, role assignments, tokens, quotas.

Pure data: no SQL, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: every role; `admin` is global (every project, and the administration of the cloud)
ADMIN, MEMBER, READER = "admin", "member", "reader"
ROLES = (ADMIN, MEMBER, READER)
#: roles held on one project (admin is held on none)
PROJECT_ROLES = (MEMBER, READER)
#: what a project's quotas limit, and the setting (quota_<resource>) giving each default
QUOTA_RESOURCES = ("instances", "cores", "memory_gb", "volumes", "storage_gb", "networks")
UNLIMITED = -1


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class User:
    id: str
    name: str
    created_at: datetime
    #: an argon2id hash ($argon2id$...), None for a user without a password
    password_hash: str | None = None
    oidc_issuer: str | None = None
    oidc_subject: str | None = None
    x509_dn: str | None = None
    disabled: bool = False

    @property
    def methods(self) -> list[str]:
        """How this user can prove who they are (besides API tokens)."""
        out = []
        if self.password_hash:
            out.append("password")
        if self.oidc_issuer:
            out.append("oidc")
        if self.x509_dn:
            out.append("x509")
        return out


@dataclass(frozen=True)
class RoleAssignment:
    user_id: str
    user_name: str
    role: str
    #: None for the global admin role
    project_id: str | None = None
    project_name: str | None = None


@dataclass(frozen=True)
class Token:
    id: str
    user_id: str
    user_name: str
    created_at: datetime
    #: the project the token is scoped to; None: any project the user has a role on
    project_id: str | None = None
    project_name: str | None = None
    name: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def status(self, now: datetime) -> str:
        """active, expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class Quota:
    project_id: str
    resource: str
    #: -1: unlimited
    limit: int
    #: True when an administrator set it for the project, False when it is the setting's default
    explicit: bool = False

"""Who is making a request: a user name and a role, nothing that could go stale or leak."""

from __future__ import annotations

from dataclasses import dataclass

from carml.db.models import Role


@dataclass(frozen=True)
class Caller:
    """The authenticated user behind a request or a command; `name` is what `owner` columns hold."""

    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        """Admins see and manage every user's jobs, uploads and comparisons."""
        return self.role == Role.ADMIN

    @property
    def can_publish(self) -> bool:
        """Publishers (and admins) may publish or remove models and shared datasets."""
        return self.role in (Role.PUBLISHER, Role.ADMIN)

    def owns(self, owner: str | None) -> bool:
        """Whether this caller may see a row owned by `owner`: their own, or any row for an admin."""
        return self.is_admin or owner == self.name

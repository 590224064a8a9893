"""The embedded default's first user: an `admin` created when there is nobody yet, its secrets shown once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from carml.accounts.errors import AccountError
from carml.accounts.tokens import create_token
from carml.accounts.users import count_users, create_user
from carml.db.models import Role
from carml.settings import Settings

FIRST_ADMIN = "admin"
FIRST_TOKEN_NAME = "carml up"


@dataclass(frozen=True)
class FirstAdmin:
    """What `carml up` prints once: the admin's name, password (None when CARML_ADMIN_PASSWORD chose it), token."""

    name: str
    password: str | None
    token: str


def ensure_first_admin(settings: Settings) -> FirstAdmin | None:
    """Create `admin` (role admin) with a password and a token when the users table is empty; None otherwise.

    The password is CARML_ADMIN_PASSWORD when set (for tests and automation), else random."""
    if count_users(settings):
        return None
    password = settings.admin_password or secrets.token_urlsafe(12)
    try:
        create_user(settings, FIRST_ADMIN, Role.ADMIN, password)
    except AccountError as exc:
        if exc.status == 409:  # another process created it a moment ago: its terminal shows the secrets
            return None
        raise
    token = create_token(settings, FIRST_ADMIN, FIRST_TOKEN_NAME)
    return FirstAdmin(FIRST_ADMIN, None if settings.admin_password else password, token)

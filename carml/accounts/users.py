"""Users: created with a role and an optional password (web login), listed, disabled.

Functions return plain `UserInfo` values, never ORM rows, so callers cannot touch the database by accident.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from carml.accounts.caller import Caller
from carml.accounts.errors import AccountError
from carml.db.models import Role, User
from carml.db.session import DatabaseError, session_scope
from carml.settings import Settings

# Owner columns hold the name, and URLs and CLI arguments carry it: keep it short, lower-case and unambiguous.
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # hashing is deliberately slow; an unbounded input would make it a denial of service


@dataclass(frozen=True)
class UserInfo:
    """A user as the CLI and the web pages show it."""

    id: int
    name: str
    role: Role
    disabled: bool
    has_password: bool
    created_at: datetime

    @property
    def caller(self) -> Caller:
        return Caller(self.name, self.role)


def _info(row: User) -> UserInfo:
    return UserInfo(row.id, row.name, Role(row.role), row.disabled, row.password_hash is not None, row.created_at)


def parse_role(role: str | Role) -> Role:
    """`role` as a `Role`, or a clear error naming the choices."""
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise AccountError(f"unknown role {role!r}: expected one of {choices}", field="role") from None


#: Owner of everything made before accounts existed; an account by that name would inherit it all silently.
LEGACY_OWNER = "local"


def check_user_name(name: str) -> str:
    if name == LEGACY_OWNER:
        raise AccountError(
            f"user name {LEGACY_OWNER!r} is reserved: it owns the work made before accounts existed", field="name"
        )
    if not USER_NAME.match(name):
        raise AccountError(
            f"user name {name!r}: use 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter "
            "or digit",
            field="name",
        )
    return name


def hash_password(password: str) -> str:
    """A salted hash of `password` (werkzeug's scrypt), after checking its length."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AccountError(
            f"the password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters", field="password"
        )
    return generate_password_hash(password)


def create_user(settings: Settings, name: str, role: str | Role = Role.USER, password: str | None = None) -> UserInfo:
    """Create a user; without a password the user can only use API tokens. Refuses a name already taken."""
    check_user_name(name)
    row = User(name=name, role=parse_role(role).value, password_hash=hash_password(password) if password else None)
    try:
        with session_scope(settings.database) as session:
            if session.scalar(select(User.id).where(User.name == name)) is not None:
                raise AccountError(f"user {name!r} already exists", field="name", status=409)
            session.add(row)
            session.flush()
            return _info(row)
    except DatabaseError as exc:
        # Two creations of one name at once: the unique constraint decides, the loser gets the same message.
        if isinstance(exc.__cause__, IntegrityError):
            raise AccountError(f"user {name!r} already exists", field="name", status=409) from None
        raise


def find_user_row(session: Session, name: str) -> User:
    """The user of that name in `session`, or a 404-like error naming it."""
    row = session.scalar(select(User).where(User.name == name))
    if row is None:
        raise AccountError(f"no user named {name!r} (see `carml users list`)", field="user", status=404)
    return row


def get_user(settings: Settings, name: str) -> UserInfo:
    with session_scope(settings.database) as session:
        return _info(find_user_row(session, name))


def list_users(settings: Settings) -> list[UserInfo]:
    with session_scope(settings.database) as session:
        return [_info(row) for row in session.scalars(select(User).order_by(User.name))]


def count_users(settings: Settings) -> int:
    with session_scope(settings.database) as session:
        return session.scalar(select(func.count(User.id))) or 0


def disable_user(settings: Settings, name: str) -> UserInfo:
    """Disable a user: their password and every token stop working at once (their jobs and data stay)."""
    with session_scope(settings.database) as session:
        row = find_user_row(session, name)
        row.disabled = True
        return _info(row)


def verify_password(settings: Settings, name: str, password: str) -> Caller | None:
    """The caller whose name and password these are, or None: unknown user, wrong password, no password set, or
    disabled. Every refusal takes as long as a wrong password, so the answer does not tell which it was."""
    row = None
    if USER_NAME.match(name):  # NB: a name that cannot be a user's (a NUL, say) never reaches the database
        with session_scope(settings.database) as session:
            row = session.scalar(select(User).where(User.name == name))
    stored = row.password_hash if row is not None else None
    if len(password) > MAX_PASSWORD_LENGTH:
        return None
    matches = check_password_hash(stored or _unknown_user_hash(), password)
    if row is None or stored is None or row.disabled or not matches:
        return None
    return Caller(row.name, Role(row.role))


def caller_for_user_id(settings: Settings, user_id: int) -> Caller | None:
    """The caller a web session names by user id, or None if that user is gone or disabled."""
    with session_scope(settings.database) as session:
        row = session.get(User, user_id)
        if row is None or row.disabled:
            return None
        return Caller(row.name, Role(row.role))


def caller_named(settings: Settings, name: str) -> Caller | None:
    """The caller a user name stands for (with the user's role), or None when no user has that name."""
    if not USER_NAME.match(name):
        return None
    with session_scope(settings.database) as session:
        row = session.scalar(select(User).where(User.name == name))
        return None if row is None else Caller(row.name, Role(row.role))


def user_id_for(settings: Settings, name: str) -> int:
    with session_scope(settings.database) as session:
        return find_user_row(session, name).id


@functools.cache
def _unknown_user_hash() -> str:
    # NB: checked when the user does not exist, so a wrong name costs as long as a wrong password (no name probing).
    return generate_password_hash("not the password of anyone")

"""API tokens: shown once when created, stored only as their SHA-256 and a short prefix, revocable.

A token is `carml_` followed by 43 random URL-safe characters (256 bits), so a digest without salt is enough:
nobody can guess one, and the database alone never lets anyone use one.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select, update

from carml.accounts.caller import Caller
from carml.accounts.errors import AccountError
from carml.accounts.users import find_user_row
from carml.db.base import utcnow
from carml.db.driver_statements import DriverStatement
from carml.db.models import ApiToken, Role, User
from carml.db.session import read_scope, session_scope
from carml.settings import Settings

TOKEN_PREFIX = "carml_"
PREFIX_LENGTH = 12  # "carml_" and the first 6 random characters: enough to tell tokens apart in a list
MAX_TOKEN_LENGTH = 200  # anything longer is not one of ours; refused before hashing or querying
MAX_TOKEN_NAME_LENGTH = 100
# NB: writing last_used_at on every request would turn each read into a write; once a minute is precise enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenInfo:
    """A token as lists show it: everything but the secret, which is never stored."""

    id: int
    user: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime | None = None) -> str:
        """`active`, `revoked` or `expired`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


def _info(row: ApiToken, user_name: str) -> TokenInfo:
    return TokenInfo(
        row.id, user_name, row.name, row.prefix, row.created_at, row.last_used_at, row.expires_at, row.revoked_at
    )


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_token_name(token_name: str) -> str:
    name = token_name.strip()
    if not name or len(name) > MAX_TOKEN_NAME_LENGTH or not name.isprintable():
        raise AccountError(
            f"token name {token_name!r}: give 1 to {MAX_TOKEN_NAME_LENGTH} printable characters", field="name"
        )
    return name


def _check_expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise AccountError("expires_at must carry a time zone (e.g. datetime.now(UTC))", field="expires_at")
    if expires_at <= utcnow():
        raise AccountError(f"expires_at {expires_at.isoformat()} is in the past", field="expires_at")
    return expires_at.astimezone(UTC)


def create_token(settings: Settings, user_name: str, token_name: str, expires_at: datetime | None = None) -> str:
    """Create a token for `user_name` and return its secret: the only time it exists outside its owner's hands."""
    name, expiry = _check_token_name(token_name), _check_expiry(expires_at)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with session_scope(settings.database) as session:
        user = find_user_row(session, user_name)
        if user.disabled:
            raise AccountError(f"user {user_name!r} is disabled", field="user", status=409)
        session.add(
            ApiToken(
                user_id=user.id,
                name=name,
                prefix=token[:PREFIX_LENGTH],
                token_sha256=token_digest(token),
                expires_at=expiry,
            )
        )
    return token


def list_tokens(settings: Settings, user_name: str | None = None) -> list[TokenInfo]:
    """Every token (of one user, when named), oldest first."""
    query = select(ApiToken, User.name).join(User, ApiToken.user_id == User.id).order_by(ApiToken.id)
    with session_scope(settings.database) as session:
        if user_name is not None:
            query = query.where(ApiToken.user_id == find_user_row(session, user_name).id)
        return [_info(row, owner) for row, owner in session.execute(query)]


def revoke_token(settings: Settings, token_id: int, user_name: str | None = None) -> TokenInfo:
    """Revoke a token by id; with `user_name`, only if it is that user's (otherwise: as if it did not exist).

    Revoking a revoked token changes nothing and is not an error, so a retried request is harmless."""
    query = select(ApiToken, User.name).join(User, ApiToken.user_id == User.id).where(ApiToken.id == token_id)
    if user_name is not None:
        query = query.where(User.name == user_name)
    with session_scope(settings.database) as session:
        found = session.execute(query).first()
        if found is None:
            raise AccountError(f"no token with id {token_id}", field="id", status=404)
        row, owner = found
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return _info(row, owner)


def authenticate_token(settings: Settings, token: str) -> Caller | None:
    """The caller a bearer token stands for, or None: unknown, revoked, expired, or its user disabled."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    now = utcnow()
    with read_scope(settings.database) as session:  # one statement; a write only once a minute (below)
        rows, _ = _token_lookup().execute(session, {"digest": token_digest(token)})
    if not rows:
        return None
    row = rows[0]
    expires_at, last_used_at = row["expires_at"], row["last_used_at"]
    if row["revoked_at"] is not None or row["disabled"] or (expires_at is not None and expires_at <= now):
        return None
    if last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION:
        with session_scope(settings.database) as session:
            session.execute(update(ApiToken).where(ApiToken.id == row["id"]).values(last_used_at=now))
    return Caller(row["name"], Role(row["role"]))


@functools.cache
def _token_lookup() -> DriverStatement:
    """`authenticate_token`'s read: the columns it needs, not the ORM's two objects, compiled once and run as the
    driver's SQL (`DriverStatement`). Every API request runs it."""
    return DriverStatement(
        select(
            ApiToken.id,
            ApiToken.revoked_at,
            ApiToken.expires_at,
            ApiToken.last_used_at,
            User.name,
            User.role,
            User.disabled,
        )
        .join(User, ApiToken.user_id == User.id)
        .where(ApiToken.token_sha256 == bindparam("digest"))
    )

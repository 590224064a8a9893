"""Users, passwords and API tokens in the database: hashed, shown once, refused once revoked, expired or disabled."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from carml.accounts import (
    AccountError,
    Caller,
    authenticate_token,
    create_token,
    create_user,
    disable_user,
    ensure_first_admin,
    list_tokens,
    list_users,
    revoke_token,
    verify_password,
)
from carml.db.migrate import upgrade
from carml.db.models import ApiToken, Role
from carml.db.session import session_scope
from carml.settings import Settings, load_settings


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    settings = load_settings({"CARML_HOME": str(tmp_path / "home")})
    upgrade(settings.database)
    return settings


def _database_text(settings: Settings) -> str:
    """Every value of every row of the accounts tables, as one string."""
    with session_scope(settings.database) as session:
        rows = [*session.execute(text("SELECT * FROM users")), *session.execute(text("SELECT * FROM api_tokens"))]
    return " ".join(str(value) for row in rows for value in row)


def test_a_token_is_stored_only_as_its_digest_and_works_until_revoked(settings: Settings) -> None:
    create_user(settings, "alice", Role.USER)
    token = create_token(settings, "alice", "laptop")
    assert token.startswith("carml_") and len(token) > 40
    stored = _database_text(settings)
    assert token not in stored and token[12:] not in stored  # neither the secret nor its random part
    with session_scope(settings.database) as session:
        row = session.scalar(select(ApiToken))
        assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest() and row.prefix == token[:12]

    caller = authenticate_token(settings, token)
    assert caller == Caller("alice", Role.USER) and not caller.is_admin and not caller.can_publish
    assert authenticate_token(settings, token + "x") is None and authenticate_token(settings, "Bearer") is None
    [listed] = list_tokens(settings, "alice")
    assert listed.name == "laptop" and listed.last_used_at is not None and listed.state() == "active"

    revoked = revoke_token(settings, listed.id)
    assert revoked.state() == "revoked" and authenticate_token(settings, token) is None
    assert revoke_token(settings, listed.id).revoked_at == revoked.revoked_at  # again: harmless, unchanged


def test_expired_tokens_and_disabled_users_are_refused(settings: Settings) -> None:
    create_user(settings, "bob", "publisher")
    soon = create_token(settings, "bob", "short", datetime.now(UTC) + timedelta(seconds=30))
    lasting = create_token(settings, "bob", "long")
    assert authenticate_token(settings, soon) == Caller("bob", Role.PUBLISHER)
    with session_scope(settings.database) as session:  # time passes: the expiry is now behind us
        session.scalars(select(ApiToken).where(ApiToken.name == "short")).one().expires_at = datetime.now(UTC)
    assert authenticate_token(settings, soon) is None and authenticate_token(settings, lasting) is not None

    disable_user(settings, "bob")
    assert authenticate_token(settings, lasting) is None
    with pytest.raises(AccountError, match="disabled"):
        create_token(settings, "bob", "another")


def test_last_used_is_written_at_most_once_a_minute(settings: Settings) -> None:
    create_user(settings, "carol")
    token = create_token(settings, "carol", "ci")
    authenticate_token(settings, token)
    first = list_tokens(settings, "carol")[0].last_used_at
    authenticate_token(settings, token)
    assert list_tokens(settings, "carol")[0].last_used_at == first
    with session_scope(settings.database) as session:
        session.scalars(select(ApiToken)).one().last_used_at = first - timedelta(minutes=2)
    authenticate_token(settings, token)
    assert list_tokens(settings, "carol")[0].last_used_at > first - timedelta(seconds=1)


def test_passwords_are_salted_hashes_and_every_refusal_looks_the_same(settings: Settings) -> None:
    create_user(settings, "dave", "admin", password="correct horse")
    assert "correct horse" not in _database_text(settings)
    assert verify_password(settings, "dave", "correct horse") == Caller("dave", Role.ADMIN)
    assert verify_password(settings, "dave", "wrong horse") is None
    assert verify_password(settings, "nobody", "correct horse") is None
    create_user(settings, "erin")  # no password: API tokens only
    assert verify_password(settings, "erin", "") is None
    disable_user(settings, "dave")
    assert verify_password(settings, "dave", "correct horse") is None


BAD_REQUESTS = [
    (lambda s: create_user(s, "Alice"), "name", 400),
    (lambda s: create_user(s, "x" * 65), "name", 400),
    (lambda s: create_user(s, "frank", "boss"), "role", 400),
    (lambda s: create_user(s, "frank", password="short"), "password", 400),
    (lambda s: create_user(s, "taken"), "name", 409),
    (lambda s: create_token(s, "nobody", "t"), "user", 404),
    (lambda s: create_token(s, "taken", " "), "name", 400),
    (lambda s: create_token(s, "taken", "t", datetime.now(UTC) - timedelta(days=1)), "expires_at", 400),
    (lambda s: revoke_token(s, 999), "id", 404),
    (lambda s: disable_user(s, "nobody"), "user", 404),
]


def test_bad_requests_are_clear_errors_naming_the_field(settings: Settings) -> None:
    create_user(settings, "taken")
    for call, field, status in BAD_REQUESTS:
        with pytest.raises(AccountError) as raised:
            call(settings)
        assert (raised.value.field, raised.value.status) == (field, status), raised.value
    assert [u.name for u in list_users(settings)] == ["taken"]  # nothing half-written


def test_a_token_is_revoked_only_through_its_own_user_when_one_is_named(settings: Settings) -> None:
    create_user(settings, "gina")
    create_user(settings, "hal")
    create_token(settings, "gina", "mine")
    [token] = list_tokens(settings, "gina")
    with pytest.raises(AccountError) as raised:
        revoke_token(settings, token.id, user_name="hal")
    assert raised.value.status == 404 and list_tokens(settings, "gina")[0].state() == "active"


def test_the_first_admin_is_created_once_with_the_chosen_password(tmp_path: Path) -> None:
    settings = load_settings({"CARML_HOME": str(tmp_path / "home"), "CARML_ADMIN_PASSWORD": "chosen-password"})
    upgrade(settings.database)
    first = ensure_first_admin(settings)
    assert first is not None and first.name == "admin" and first.password is None  # the operator chose it
    assert authenticate_token(settings, first.token) == Caller("admin", Role.ADMIN)
    assert verify_password(settings, "admin", "chosen-password") == Caller("admin", Role.ADMIN)
    assert ensure_first_admin(settings) is None

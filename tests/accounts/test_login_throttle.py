"""Web login throttling on PostgreSQL: failures per user name and per client address, 429 with Retry-After, a
success forgiving its name, old failures pruned, parallel attempts counted against each other, and the client
address taken from X-Forwarded-For only when the deployment trusts a proxy."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from carml.accounts import create_user
from carml.accounts.login_throttle import (
    NOT_A_USER_NAME,
    LoginThrottled,
    begin_login_attempt,
    login_succeeded,
)
from carml.db.base import utcnow
from carml.db.migrate import upgrade
from carml.db.models import LoginFailure
from carml.db.session import session_scope
from carml.errors import CarmlError
from carml.settings import Settings, load_settings
from webapp import create_app

PASSWORD = "a long enough password"
WINDOW_S = 900
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture()
def settings(tmp_path: Path, fresh_postgres_url: str) -> Settings:
    settings = load_settings(
        {
            "CARML_HOME": str(tmp_path / "home"),
            "CARML_DATABASE_URL": fresh_postgres_url,
            "CARML_LOGIN_MAX_FAILURES_PER_NAME": "3",
            "CARML_LOGIN_MAX_FAILURES_PER_ADDRESS": "5",
            "CARML_LOGIN_WINDOW_S": str(WINDOW_S),
        }
    )
    upgrade(settings.database)
    create_user(settings, "alice", "user", PASSWORD)
    return settings


def _app(settings: Settings) -> Flask:
    return create_app(settings, lambda *_: None)


def _log_in(client: FlaskClient, name: str, password: str, address: str = "192.0.2.10", **headers: str):
    found = _CSRF.search(client.get("/login").get_data(as_text=True))
    assert found
    form = {"csrf_token": found.group(1), "name": name, "password": password, "next": ""}
    return client.post("/login", data=form, headers=headers, environ_base={"REMOTE_ADDR": address})


def _failures(settings: Settings, **where: str) -> list[tuple[str, str]]:
    query = select(LoginFailure.user_name, LoginFailure.remote_addr).order_by(LoginFailure.id)
    for column, value in where.items():
        query = query.where(getattr(LoginFailure, column) == value)
    with session_scope(settings.database) as session:
        return [tuple(row) for row in session.execute(query)]


def _fail_at(settings: Settings, user_name: str, address: str, seconds_ago: float) -> None:
    with session_scope(settings.database) as session:
        session.add(
            LoginFailure(user_name=user_name, remote_addr=address, failed_at=utcnow() - timedelta(seconds=seconds_ago))
        )


@pytest.mark.parametrize("name", ["alice", "mallory"])  # a user, and a name nobody has: treated alike
def test_a_name_with_too_many_failures_is_refused_before_its_password_is_checked(settings: Settings, name) -> None:
    client = _app(settings).test_client()
    for _ in range(3):
        assert _log_in(client, name, "not the password").status_code == 401
    refused = _log_in(client, name, PASSWORD)  # the right password (for alice) changes nothing now
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= WINDOW_S
    page = refused.get_data(as_text=True)
    assert "Too many failed logins for this user name or from this address. Try again in 15 minutes." in page
    assert f'value="{name}"' in page  # the form comes back filled in
    assert client.get("/jobs").status_code == 302  # not logged in
    # The refusal is no failure of its own: the lockout does not grow while someone keeps trying.
    assert len(_failures(settings, user_name=name)) == 3
    # Another name from the same address, and the same name from another address once the window allows, go on.
    assert _log_in(client, "bob", "not the password").status_code == 401


def test_a_success_forgives_its_name_only(settings: Settings) -> None:
    client = _app(settings).test_client()
    for _ in range(2):
        assert _log_in(client, "alice", "not the password").status_code == 401
    assert _log_in(client, "mallory", "guess").status_code == 401
    response = _log_in(client, "alice", PASSWORD)
    assert response.status_code == 303
    assert _failures(settings, user_name="alice") == []
    assert _failures(settings) == [("mallory", "192.0.2.10")]  # other names' failures stay
    client.post("/logout", data={"csrf_token": _CSRF.search(client.get("/jobs").get_data(as_text=True)).group(1)})
    for _ in range(3):  # a clean slate: the full allowance again
        assert _log_in(client, "alice", "not the password").status_code == 401
    assert _log_in(client, "alice", PASSWORD).status_code == 429


def test_an_address_with_too_many_failures_is_refused_whatever_the_name(settings: Settings) -> None:
    client = _app(settings).test_client()
    for name in ("n1", "n2", "n3", "n4", "n5"):
        assert _log_in(client, name, "guess", address="198.51.100.7").status_code == 401
    assert _log_in(client, "alice", PASSWORD, address="198.51.100.7").status_code == 429
    assert _log_in(client, "alice", PASSWORD, address="198.51.100.8").status_code == 303


def test_names_that_cannot_be_users_share_one_bucket_and_never_reach_postgresql_raw(settings: Settings) -> None:
    client = _app(settings).test_client()
    for name in ("Alice", "x\x00y", "a" * 300):
        assert _log_in(client, name, "guess").status_code == 401
    assert _failures(settings, user_name=NOT_A_USER_NAME) == [(NOT_A_USER_NAME, "192.0.2.10")] * 3
    assert _log_in(client, "Bob", "guess").status_code == 429


def test_retry_after_is_when_enough_failures_leave_the_window_and_old_rows_are_pruned(settings: Settings) -> None:
    _fail_at(settings, "alice", "203.0.113.1", seconds_ago=WINDOW_S + 60)  # outside the window: pruned below
    for seconds_ago in (600, 300, 100):
        _fail_at(settings, "alice", "203.0.113.1", seconds_ago)
    with pytest.raises(LoginThrottled) as caught:
        begin_login_attempt(settings, "alice", "203.0.113.2")
    # One more try needs the oldest of the three (600 s ago) to leave the 900 s window: about 300 s from now.
    assert 295 <= caught.value.retry_after_s <= 300 and caught.value.status == 429
    assert len(_failures(settings, user_name="alice")) == 3  # the pruned row is gone, the refused one not added

    _fail_at(settings, "zed", "203.0.113.9", seconds_ago=800)
    attempt = begin_login_attempt(settings, "zed", "203.0.113.9")  # 2 failures with this one: within the limit
    login_succeeded(settings, attempt)
    assert _failures(settings, user_name="zed") == []


def test_parallel_attempts_get_no_more_password_checks_than_the_limit(settings: Settings) -> None:
    allowed: list[str] = []
    refused: list[int] = []
    barrier = threading.Barrier(12)

    def attempt() -> None:
        barrier.wait()
        try:
            begin_login_attempt(settings, "alice", "192.0.2.99")
            allowed.append("alice")
        except LoginThrottled as exc:
            refused.append(exc.retry_after_s)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) <= 3 and len(allowed) + len(refused) == 12
    with session_scope(settings.database) as session:
        kept = session.scalar(select(func.count()).select_from(LoginFailure).where(LoginFailure.user_name == "alice"))
    assert kept == len(allowed)  # refused attempts took their rows back


def test_the_client_address_comes_from_a_trusted_proxy_only(settings: Settings) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.50"}
    direct = _app(settings).test_client()
    assert _log_in(direct, "mallory", "guess", address="10.0.0.2", **forwarded).status_code == 401
    proxied = _app(replace(settings, trusted_proxy_hops=1)).test_client()
    assert _log_in(proxied, "mallory", "guess", address="10.0.0.2", **forwarded).status_code == 401
    assert _failures(settings, user_name="mallory") == [("mallory", "10.0.0.2"), ("mallory", "203.0.113.50")]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CARML_LOGIN_MAX_FAILURES_PER_NAME", "0"),
        ("CARML_LOGIN_MAX_FAILURES_PER_ADDRESS", "-1"),
        ("CARML_LOGIN_WINDOW_S", "soon"),
        ("CARML_TRUSTED_PROXY_HOPS", "-1"),
    ],
)
def test_throttle_settings_are_checked(variable: str, value: str) -> None:
    with pytest.raises(CarmlError, match=variable):
        load_settings({variable: value})

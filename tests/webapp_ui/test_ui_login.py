"""Logging in to the web pages, the Account page's tokens, and each user seeing only their own jobs."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support import sign_in

from carml.accounts import create_user, disable_user
from carml.settings import Settings

PASSWORD = "a long enough password"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(client: FlaskClient, page: str) -> str:
    found = _CSRF.search(client.get(page).get_data(as_text=True))
    assert found, page
    return found.group(1)


def _log_in(client: FlaskClient, name: str, password: str, next_: str = "") -> object:
    token = _csrf(client, "/login")
    return client.post("/login", data={"csrf_token": token, "name": name, "password": password, "next": next_})


@pytest.fixture()
def visitor(app: Flask, settings: Settings) -> FlaskClient:
    """A browser that is not logged in; the user `alice` (role user) exists with a password."""
    create_user(settings, "alice", "user", PASSWORD)
    return app.test_client()


def test_pages_send_a_visitor_to_log_in_and_back(visitor: FlaskClient) -> None:
    for page in ("/", "/jobs?status=queued", "/account", "/try"):
        response = visitor.get(page)
        assert response.status_code == 302
        location = urlsplit(response.headers["Location"])
        assert location.path == "/login" and parse_qs(location.query)["next"] == [page]
    assert visitor.get("/login").status_code == 200 and visitor.get("/static/carml.css").status_code == 200

    wrong = _log_in(visitor, "alice", "not the password", "/jobs")
    unknown = _log_in(visitor, "mallory", PASSWORD, "/jobs")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name or password" in wrong.get_data(as_text=True)
    assert visitor.get("/jobs").status_code == 302

    response = _log_in(visitor, "alice", PASSWORD, "/jobs?status=queued")
    assert response.status_code == 303 and response.headers["Location"] == "/jobs?status=queued"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = visitor.get("/jobs").get_data(as_text=True)
    assert 'id="current-user"' in page and ">alice</a>" in page

    out = visitor.post("/logout", data={"csrf_token": _csrf(visitor, "/jobs")})
    assert out.status_code == 303 and out.headers["Location"] == "/login"
    assert visitor.get("/jobs").status_code == 302


def test_login_never_redirects_off_site(visitor: FlaskClient) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x", "/%0d%0aX: y"):
        response = _log_in(visitor, "alice", PASSWORD, target)
        location = response.headers["Location"]
        assert response.status_code == 303 and location.startswith("/") and not location.startswith("//"), target
        assert urlsplit(location).netloc == "" and "\n" not in location and "\\" not in location, target
        assert location == "/" or target.startswith("/%"), target  # only the plain path stays (percent-encoded)
        visitor.post("/logout", data={"csrf_token": _csrf(visitor, "/jobs")})


def test_login_needs_the_csrf_token_and_a_disabled_user_is_logged_out(visitor: FlaskClient, settings: Settings) -> None:
    refused = visitor.post("/login", data={"name": "alice", "password": PASSWORD})
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    assert _log_in(visitor, "alice", PASSWORD).status_code == 303
    assert visitor.get("/jobs").status_code == 200
    disable_user(settings, "alice")
    assert visitor.get("/jobs").status_code == 302  # the session names a user no longer allowed in


def test_the_account_page_shows_a_new_token_once_and_revokes_it(app: Flask, settings: Settings) -> None:
    browser = sign_in(app.test_client(), settings, "carol", "user")
    del browser.environ_base["HTTP_AUTHORIZATION"]  # the page, not the token sign_in made, is under test
    form = {"csrf_token": _csrf(browser, "/account"), "name": "laptop", "expires_days": "30"}
    created = browser.post("/account/tokens", data=form)
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    token = re.search(r'id="new-token-value">(carml_[^<]+)<', created.get_data(as_text=True)).group(1)
    api = app.test_client()
    assert api.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page = browser.get("/account").get_data(as_text=True)
    assert token not in page and token[:12] in page and "laptop" in page

    bad = browser.post("/account/tokens", data={**form, "expires_days": "forever"})
    assert bad.status_code == 400 and 'id="expires_days-error"' in bad.get_data(as_text=True)

    token_id = re.search(r'data-token-id="(\d+)" data-state="active">\s*<td><code>' + token[:12], page).group(1)
    intruder = sign_in(app.test_client(), settings, "dan", "user")
    intruder.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": _csrf(intruder, "/account")})
    assert api.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    revoked = browser.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": form["csrf_token"]})
    assert revoked.status_code == 303
    assert api.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_pages_show_a_user_only_their_own_jobs(app: Flask, settings: Settings, client: FlaskClient, evaluate) -> None:
    theirs = evaluate()  # submitted by the admin `local`
    user = sign_in(app.test_client(), settings, "erin", "user")
    mine = user.post(
        "/api/v1/jobs",
        json={"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits", "limit": 8},
    ).json["id"]
    listed = user.get("/jobs").get_data(as_text=True)
    assert mine[:8] in listed and theirs[:8] not in listed
    for path in (f"/jobs/{theirs}", f"/jobs/{theirs}/charts.json", f"/jobs/{theirs}/timeline.json"):
        assert user.get(path).status_code == 404, path
    assert user.post(f"/jobs/{theirs}/cancel", data={"csrf_token": _csrf(user, "/jobs")}).status_code == 404
    assert user.get(f"/jobs/{mine}").status_code == 200
    admin_list = client.get("/jobs").get_data(as_text=True)
    assert mine[:8] in admin_list and theirs[:8] in admin_list

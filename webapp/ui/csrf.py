"""CSRF protection for the UI's forms: one random token per session, required on every unsafe request."""

from __future__ import annotations

import hmac
import secrets

from flask import request, session
from werkzeug.exceptions import BadRequest

SESSION_KEY = "csrf_token"
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"  # for scripts that POST without a form
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CsrfError(BadRequest):
    """A form submitted without this session's token: forged elsewhere, or older than the session."""

    description = (
        "The form was refused: its CSRF token is missing or does not match this browser session "
        "(the page may be older than the session). Reload the page and submit the form again."
    )


def csrf_token() -> str:
    """This session's token, created on first use (templates put it in a hidden field of every form)."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def check_csrf() -> None:
    """Refuse an unsafe request whose token is missing or is not the session's (a blueprint before_request)."""
    if request.method not in _UNSAFE:
        return
    expected = session.get(SESSION_KEY)
    given = request.headers.get(HEADER) or request.form.get(FORM_FIELD)
    if not isinstance(expected, str) or not expected or not given:
        raise CsrfError()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfError()

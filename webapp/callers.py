"""The caller of the request being handled: set once per request by the API's or the pages' login check.

API requests name themselves with a bearer token; web pages with the login session (a signed cookie holding
only the user id, looked up again on every request so that disabling a user takes effect at once).
"""

from __future__ import annotations

from flask import g, session

from carml.accounts import Caller, caller_for_user_id
from webapp.context import settings

SESSION_USER_KEY = "user_id"


def session_caller() -> Caller | None:
    """The user logged in to this browser session, or None (not logged in, user gone or disabled)."""
    user_id = session.get(SESSION_USER_KEY)
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    return caller_for_user_id(settings(), user_id)


def set_caller(caller: Caller) -> None:
    g.caller = caller


def current_caller() -> Caller:
    """Who this request acts for. Every route but /login, /api/v1/health and static files has one."""
    caller = g.get("caller")
    if caller is None:
        # A route reached without the login check is a bug in the app, never a reason to act as nobody.
        raise RuntimeError("no authenticated caller for this request")
    return caller

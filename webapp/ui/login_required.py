"""The pages' login check: every page but /login needs a logged-in user; others are sent to log in first."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from webapp.callers import session_caller, set_caller

LOGIN_ENDPOINT = "ui_account.login"


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site; None for anything that could leave it (`//host`, `https:`, `\\`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return None
    return target


def require_login() -> BaseResponse | None:
    """A blueprint before_request: set the caller from the login session, or redirect to /login?next=<here>."""
    caller = session_caller()
    if caller is not None:
        set_caller(caller)
        return None
    # A form posted after the session ended comes back to the page it was on, not to a POST-only URL.
    here = (
        request.full_path.rstrip("?")
        if request.method == "GET"
        else (request.referrer and urlsplit(request.referrer).path)
    )
    return redirect(url_for(LOGIN_ENDPOINT, next=safe_next(here) or None), 303 if request.method != "GET" else 302)

"""Logging in and out (`/login`, `/logout`): the only pages anyone may open without being logged in."""

from __future__ import annotations

from flask import redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from carml.accounts import verify_password
from carml.accounts.login_throttle import LoginThrottled, begin_login_attempt, login_succeeded
from carml.accounts.users import MAX_PASSWORD_LENGTH, user_id_for
from webapp.callers import SESSION_USER_KEY, session_caller
from webapp.context import settings
from webapp.ui.forms import Form
from webapp.ui.login_required import safe_next
from webapp.ui.pages import ui_blueprint

blueprint = ui_blueprint("ui_account", __name__, public=True)

FIELDS = ("name", "next")  # the password is read as typed: Form strips spaces


def _destination(target: str | None) -> str:
    return safe_next(target) or url_for("ui_catalog.catalog")


@blueprint.get("/login")
def login() -> BaseResponse | str:
    """The login form; someone already logged in goes straight on."""
    target = request.args.get("next")
    if session_caller() is not None:
        return redirect(_destination(target))
    return render_template("login.html", form=Form({"next": safe_next(target) or ""}), next=safe_next(target))


def _refused(form: Form, name: str, target: str | None, message: str) -> str:
    form.error("form", message)
    return render_template("login.html", form=Form({"name": name, "next": target or ""}, form.errors), next=target)


@blueprint.post("/login")
def login_submit() -> BaseResponse | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Check name and password, unless too many logins failed lately for that name or from that address (429);
    on success start a fresh session holding only the user id."""
    form = Form.of(request.form, FIELDS)
    name = (form.values.get("name") or "").strip()
    password = request.form.get("password", "")
    target = safe_next(form.values.get("next"))
    try:
        # NB: behind a reverse proxy this is the proxy's address unless CARML_TRUSTED_PROXY_HOPS says otherwise.
        attempt = begin_login_attempt(settings(), name, request.remote_addr or "unknown")
    except LoginThrottled as refused:
        return _refused(form, name, target, str(refused)), 429, {"Retry-After": str(refused.retry_after_s)}
    caller = verify_password(settings(), name, password) if name and len(password) <= MAX_PASSWORD_LENGTH else None
    if caller is None:
        # One message for every refusal: an unknown name must not be told apart from a wrong password.
        return _refused(form, name, target, "Wrong user name or password (or the user is disabled)."), 401
    login_succeeded(settings(), attempt)
    user_id = user_id_for(settings(), caller.name)
    session.clear()  # NB: a new session on login, so a session planted before it (fixation) gains nothing
    session[SESSION_USER_KEY] = user_id
    return redirect(_destination(target), 303)


@blueprint.post("/logout")
def logout() -> BaseResponse:
    """End the session (the CSRF token with it) and go back to the login form."""
    session.clear()
    return redirect(url_for("ui_account.login"), 303)

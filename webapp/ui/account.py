"""The Account page (`/account`): who is logged in, their API tokens, creating (shown once) and revoking them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from carml.accounts import AccountError, create_token, list_tokens, revoke_token
from webapp.callers import current_caller
from webapp.context import settings
from webapp.ui.forms import Form
from webapp.ui.pages import ui_blueprint

blueprint = ui_blueprint("ui_tokens", __name__)

FIELDS = ("name", "expires_days")
MAX_EXPIRY_DAYS = 3650


def _page(form: Form, new_token: str | None = None, status: int = 200) -> tuple[str, int, dict[str, str]]:
    caller = current_caller()
    tokens = list_tokens(settings(), caller.name)
    html = render_template("account.html", caller=caller, tokens=tokens, form=form, new_token=new_token)
    # NB: a page showing a new token must not be kept by the browser's or a proxy's cache.
    return html, status, {"Cache-Control": "no-store"}


@blueprint.get("/account")
def account_page() -> tuple[str, int, dict[str, str]]:
    return _page(Form())


@blueprint.post("/account/tokens")
def create_token_submit() -> tuple[str, int, dict[str, str]]:
    """Create a token for the logged-in user and show it on this response only (never in a cookie or a flash)."""
    form = Form.of(request.form, FIELDS)
    days = form.whole_number("expires_days", 1, MAX_EXPIRY_DAYS)
    if not form.values.get("name"):
        form.error("name", "give the token a name, e.g. laptop")
    if form.errors:
        return _page(form, status=400)
    expires_at = datetime.now(UTC) + timedelta(days=days) if days else None
    try:
        token = create_token(settings(), current_caller().name, form.values["name"], expires_at)
    except AccountError as exc:
        form.service_error(exc)
        return _page(form, status=exc.status)
    return _page(Form(), new_token=token, status=201)


@blueprint.post("/account/tokens/<int:token_id>/revoke")
def revoke_token_submit(token_id: int) -> BaseResponse:
    """Revoke one of the logged-in user's tokens (someone else's answers as if it did not exist)."""
    try:
        token = revoke_token(settings(), token_id, current_caller().name)
    except AccountError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Token {token.prefix}… ({token.name}) revoked.", "success")
    return redirect(url_for("ui_tokens.account_page"), 303)

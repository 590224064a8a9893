"""Publishing a model from the catalog page (`POST /models/publish`) and removing one (`POST /models/<name>/remove`):
the same service functions as POST and DELETE /api/v1/models, for publishers."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from carml.accounts import AccountError
from carml.publishing import PublishError, publish_model, remove_model
from webapp.api.params import NAME
from webapp.callers import current_caller
from webapp.context import settings
from webapp.ui.catalog import render_catalog
from webapp.ui.forms import Form
from webapp.ui.pages import error_page, ui_blueprint

blueprint = ui_blueprint("ui_publishing", __name__)

MANIFEST_FIELD = "manifest"


@blueprint.post("/models/publish")
def publish() -> BaseResponse | tuple[str, int]:
    """Publish the manifest in the form's text area; on success go to the model's page, otherwise show the catalog
    again with the text as sent and the reason next to it."""
    # NB: not Form.of, which strips the text. Browsers send a text area's line breaks as CRLF: turned back into LF,
    # the text has the bytes (and the sha256, which jobs record) of the same manifest saved as a file.
    text = request.form.get(MANIFEST_FIELD, "").replace("\r\n", "\n")
    form = Form({MANIFEST_FIELD: text})
    try:
        result = publish_model(settings(), current_caller(), text)
    except AccountError as exc:  # not a publisher: the catalog page has no form to show the reason beside
        return error_page(str(exc), exc.status, "Not allowed")
    except PublishError as exc:
        form.error(MANIFEST_FIELD, str(exc))  # every problem names its field path and line in the text
        return render_catalog(form, exc.status)
    model = result.model
    flash(f"{model.key} {model.version} {result.outcome}.", "success")
    return redirect(url_for("ui_catalog.model_page", name=model.name), 303)


@blueprint.post("/models/<name>/remove")
def remove(name: str) -> BaseResponse:
    """Remove one framework's published manifest of `name`, then go back to the catalog."""
    framework = request.form.get("framework", "").strip() or None
    if not NAME.fullmatch(name) or (framework is not None and not NAME.fullmatch(framework)):
        flash(f"There is no published model {name[:100]!r}.", "error")
        return redirect(url_for("ui_catalog.catalog"), 303)
    try:
        removed = remove_model(settings(), current_caller(), name, framework)
    except (PublishError, AccountError) as exc:
        flash(str(exc), "error")
    else:
        flash(f"{removed.key} {removed.version} removed.", "success")
    return redirect(url_for("ui_catalog.catalog"), 303)

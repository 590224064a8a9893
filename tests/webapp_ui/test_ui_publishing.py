"""Publishing from the catalog page: a publisher's form and Remove buttons on their own models, the owner shown
beside published models, CSRF on both forms, and nothing of it for a plain user."""

from __future__ import annotations

import html

from flask import Flask
from flask.testing import FlaskClient
from publishing.manifest_texts import manifest_text
from support import sign_in
from webapp_ui.conftest import csrf_token

from carml.publishing import list_published
from carml.settings import Settings


def _browser(app: Flask, settings: Settings, name: str, role: str) -> FlaskClient:
    browser = sign_in(app.test_client(), settings, name, role)
    browser.environ_base.pop("HTTP_AUTHORIZATION")  # a browser has only its login session
    return browser


def _publish(browser: FlaskClient, text: str):
    return browser.post("/models/publish", data={"csrf_token": csrf_token(browser, "/"), "manifest": text})


def test_a_publisher_publishes_and_removes_a_model_from_the_pages(app: Flask, settings: Settings) -> None:
    alice = _browser(app, settings, "alice", "publisher")
    assert 'id="publish-form"' in alice.get("/").get_data(as_text=True)

    # Browsers send a text area's line breaks as CRLF; the model is published with the bytes of a file.
    published = _publish(alice, manifest_text().replace("\n", "\r\n"))
    assert published.status_code == 303 and published.headers["Location"].endswith("/models/digits-published")
    [model] = list_published(settings)
    assert model.owner == "alice" and model.version == "1.0.0"
    page = alice.get("/models/digits-published").get_data(as_text=True)
    assert "digits-published@onnxruntime 1.0.0 created." in page
    assert 'class="published-by">published by <span class="owner">alice</span>' in page
    assert "Remove this manifest" in page

    catalog = alice.get("/").get_data(as_text=True)
    assert "published by alice" in catalog and 'data-owner="alice"' in catalog and "remove-model-form" in catalog

    refused = _publish(alice, manifest_text("other", model_url="other.onnx"))
    text = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 400 and 'id="manifest-error"' in text
    assert "manifest:" in text and "artifacts[0].url: 'other.onnx' is a local file" in text
    assert "model_url" not in text and "url: other.onnx" in text  # the text as sent is shown again to fix

    removed = alice.post(
        "/models/digits-published/remove", data={"csrf_token": csrf_token(alice, "/"), "framework": "onnxruntime"}
    )
    assert removed.status_code == 303 and list_published(settings) == []
    assert "digits-published@onnxruntime 1.0.0 removed." in alice.get("/").get_data(as_text=True)


def test_only_the_owner_sees_remove_and_a_user_sees_no_form(app: Flask, settings: Settings) -> None:
    alice = _browser(app, settings, "alice", "publisher")
    assert _publish(alice, manifest_text()).status_code == 303
    bob = _browser(app, settings, "bob", "publisher")
    carol = _browser(app, settings, "carol", "user")

    assert "remove-model-form" not in bob.get("/").get_data(as_text=True)
    assert "Remove this manifest" not in bob.get("/models/digits-published").get_data(as_text=True)
    forced = bob.post("/models/digits-published/remove", data={"csrf_token": csrf_token(bob, "/")})
    assert forced.status_code == 303 and "only they or an admin may remove it" in bob.get("/").get_data(as_text=True)

    page = carol.get("/").get_data(as_text=True)
    assert 'id="publish-form"' not in page and "published by alice" in page
    refused = _publish(carol, manifest_text("mine"))
    assert refused.status_code == 403 and "needs the publisher role" in html.unescape(refused.get_data(as_text=True))
    assert [m.name for m in list_published(settings)] == ["digits-published"]


def test_the_forms_need_the_csrf_token(app: Flask, settings: Settings) -> None:
    alice = _browser(app, settings, "alice", "publisher")
    assert alice.post("/models/publish", data={"manifest": manifest_text()}).status_code == 400
    assert _publish(alice, manifest_text()).status_code == 303
    assert alice.post("/models/digits-published/remove", data={"framework": "onnxruntime"}).status_code == 400
    assert len(list_published(settings)) == 1

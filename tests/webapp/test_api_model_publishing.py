"""POST /api/v1/models and DELETE /api/v1/models/<name> per role, and published models in the listings: publishers
publish and remove their own models, admins any, users none; every refusal is the API's error shape with a field."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from publishing.manifest_texts import manifest_text
from support import sign_in

from carml.publishing import list_published
from carml.settings import Settings
from webapp.api.openapi import openapi_document

YAML = "application/yaml"


@pytest.fixture()
def alice(app: Flask, settings: Settings) -> FlaskClient:
    return sign_in(app.test_client(), settings, "alice", "publisher", web=False)


@pytest.fixture()
def bob(app: Flask, settings: Settings) -> FlaskClient:
    return sign_in(app.test_client(), settings, "bob", "publisher", web=False)


@pytest.fixture()
def carol(app: Flask, settings: Settings) -> FlaskClient:
    return sign_in(app.test_client(), settings, "carol", "user", web=False)


def _error(response, status: int, field: str | None, says: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    error = response.json["error"]
    assert (error["status"], error["field"]) == (status, field), error
    assert says in error["message"], error["message"]


def _valid(response, schema: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    components = openapi_document()["components"]
    jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": components}).validate(
        response.json
    )


def test_a_publisher_publishes_a_model_that_every_user_then_sees(alice, carol, settings) -> None:
    created = alice.post("/api/v1/models", data=manifest_text(), content_type=YAML)
    assert created.status_code == 201, created.json
    assert created.headers["Location"].endswith("/api/v1/models/digits-published")
    assert created.json["source"] == "published" and created.json["owner"] == "alice"
    assert created.json["outcome"] == "created" and created.json["runnable"] is True
    _valid(created, "PublishedModel")

    listed = {(m["name"], m["framework"]): m for m in carol.get("/api/v1/models").json["models"]}
    assert listed[("digits-published", "onnxruntime")]["owner"] == "alice"
    folder = listed[("digits-cnn", "onnxruntime")]
    assert (folder["source"], folder["owner"], folder["published_at"]) == ("folder", None, None)
    detail = carol.get("/api/v1/models/digits-published")
    assert detail.json["frameworks"][0]["manifest_sha256"] == created.json["manifest_sha256"]
    _valid(detail, "ModelDetail")
    _valid(carol.get("/api/v1/models"), "ModelList")

    same = alice.post("/api/v1/models", json={"manifest": manifest_text()})
    assert same.status_code == 200 and same.json["outcome"] == "unchanged"
    newer = alice.post("/api/v1/models", data=manifest_text(version="1.2.0"), content_type="text/plain")
    assert newer.status_code == 200 and newer.json["outcome"] == "replaced" and newer.json["version"] == "1.2.0"


def test_a_user_can_neither_publish_nor_remove(alice, carol, settings) -> None:
    _error(
        carol.post("/api/v1/models", data=manifest_text(), content_type=YAML),
        403,
        None,
        "publishing a model needs the publisher role; carol has the role user",
    )
    oversized = carol.post("/api/v1/models", data="x: " + "y" * 300_000, content_type=YAML)
    _error(oversized, 403, None, "publishing a model needs the publisher role")  # the role first, body unread
    assert alice.post("/api/v1/models", data=manifest_text(), content_type=YAML).status_code == 201
    _error(carol.delete("/api/v1/models/digits-published"), 403, None, "removing a model needs the publisher role")
    assert [m.owner for m in list_published(settings)] == ["alice"]


def test_publishers_remove_their_own_models_and_admins_any(alice, bob, client, settings) -> None:
    assert alice.post("/api/v1/models", data=manifest_text("a-model"), content_type=YAML).status_code == 201
    assert alice.post("/api/v1/models", data=manifest_text("b-model"), content_type=YAML).status_code == 201
    _error(
        bob.post("/api/v1/models", data=manifest_text("a-model", version="9.0.0"), content_type=YAML),
        409,
        "name",
        "already published by alice",
    )
    _error(bob.delete("/api/v1/models/a-model"), 403, "name", "published by alice; only they or an admin")

    assert alice.delete("/api/v1/models/a-model?framework=onnxruntime").status_code == 204
    assert client.delete("/api/v1/models/b-model").status_code == 204  # the admin
    assert alice.get("/api/v1/models/a-model").status_code == 404
    assert list_published(settings) == []


@pytest.mark.parametrize(
    ("send", "status", "field", "says"),
    [
        (lambda c: c.post("/api/v1/models", data="name: x", content_type="text/html"), 415, None, "application/yaml"),
        (lambda c: c.post("/api/v1/models", json={"text": "x"}), 400, "text", "unknown field 'text'"),
        (lambda c: c.post("/api/v1/models", json={"manifest": 3}), 400, "manifest", "manifest is required"),
        (lambda c: c.post("/api/v1/models", data=b"\xff\xfe", content_type=YAML), 400, "manifest", "not UTF-8"),
        (
            lambda c: c.post("/api/v1/models", data=manifest_text(model_url="x.onnx"), content_type=YAML),
            400,
            "artifacts[0].url",
            "'x.onnx' is a local file",
        ),
        (
            lambda c: c.post("/api/v1/models", data=manifest_text("digits-cnn"), content_type=YAML),
            409,
            "name",
            "digits-cnn@onnxruntime is defined by the manifest file manifests/models/digits-cnn-onnxruntime.yaml",
        ),
        (
            lambda c: c.post("/api/v1/models", data="x: " + "y" * 300_000, content_type=YAML),
            413,
            "manifest",
            "published manifests are at most 262144 bytes",
        ),
        (
            lambda c: c.post("/api/v1/models", json={"manifest": "\n" * 1_700_000}),
            413,
            "manifest",
            "published manifests are at most 262144 bytes",
        ),
        (lambda c: c.delete("/api/v1/models/digits-cnn"), 409, "name", "remove the file to remove it"),
        (lambda c: c.delete("/api/v1/models/nothing"), 404, "name", "no published model 'nothing'"),
        (lambda c: c.delete("/api/v1/models/Nothing.yaml"), 404, "name", "no published model"),
        (lambda c: c.delete("/api/v1/models/x?framework=../x"), 400, "framework", "is not a valid name"),
        (lambda c: c.delete("/api/v1/models/x?owner=me"), 400, "owner", "unknown field 'owner'"),
    ],
)
def test_refusals_name_the_field_at_fault(alice, send, status: int, field: str | None, says: str, settings) -> None:
    _error(send(alice), status, field, says)
    assert list_published(settings) == []


def test_a_model_is_neither_replaced_nor_removed_while_a_job_uses_it(alice, settings) -> None:
    assert alice.post("/api/v1/models", data=manifest_text(), content_type=YAML).status_code == 201
    body = {"kind": "evaluate", "model": "digits-published", "framework": "onnxruntime", "dataset": "digits"}
    queued = alice.post("/api/v1/jobs", json={**body, "limit": 8})
    assert queued.status_code == 201, queued.json
    _error(alice.delete("/api/v1/models/digits-published"), 409, "name", "1 queued or running job(s) use")
    newer = alice.post("/api/v1/models", data=manifest_text(version="1.0.1"), content_type=YAML)
    _error(newer, 409, "name", "queued or running job(s)")

    assert alice.post(f"/api/v1/jobs/{queued.json['id']}/cancel").status_code == 202
    assert alice.delete("/api/v1/models/digits-published").status_code == 204
    assert alice.get(f"/api/v1/jobs/{queued.json['id']}").json["model"] == "digits-published"  # history stays

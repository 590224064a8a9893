"""Who may do what through /api/v1: a bearer token on every route but health, and each user's work their own.

Someone else's job, result, outputs, trace, comparison or private upload answers 404 exactly as a missing one
does; an admin reaches everything; shared datasets need the publisher role."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support import sign_in

from carml.accounts import create_token, create_user, disable_user, list_tokens, revoke_token
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.settings import Settings
from carml.storage import open_object_store

EVALUATE = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits", "limit": 16}


@pytest.fixture()
def alice(app: Flask, settings: Settings) -> FlaskClient:
    return sign_in(app.test_client(), settings, "alice", "user", web=False)


@pytest.fixture()
def bob(app: Flask, settings: Settings) -> FlaskClient:
    return sign_in(app.test_client(), settings, "bob", "user", web=False)


def _upload(client: FlaskClient, name: str, data: bytes, **extra: str):
    form = {"name": name, "file": (io.BytesIO(data), "d.zip"), **extra}
    return client.post("/api/v1/datasets", data=form, content_type="multipart/form-data")


def _assert_unauthorized(response, invalid_token: bool) -> None:
    assert response.status_code == 401 and response.mimetype == "application/json"
    assert set(response.json["error"]) == {"message", "field", "status"} and response.json["error"]["status"] == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer") and ('error="invalid_token"' in challenge) == invalid_token


def test_every_route_but_health_needs_a_valid_token(app: Flask, settings: Settings, client: FlaskClient) -> None:
    anonymous = app.test_client()
    assert anonymous.get("/api/v1/health").status_code == 200
    assert anonymous.get("/api/openapi.json").status_code == 200
    for method, path in [
        ("get", "/api/v1/jobs"),
        ("post", "/api/v1/jobs"),
        ("get", "/api/v1/models"),
        ("delete", "/api/v1/datasets/x"),
        ("get", "/api/v1/no-such-route"),
    ]:
        _assert_unauthorized(getattr(anonymous, method)(path), invalid_token=False)
    for header, invalid_token in [
        ("Basic YWRtaW46YWRtaW4=", False),
        ("Bearer", False),
        ("Bearer carml_not-a-token", True),
        ("Bearer " + "x" * 5000, True),
    ]:
        _assert_unauthorized(anonymous.get("/api/v1/jobs", headers={"Authorization": header}), invalid_token)

    create_user(settings, "ivan")
    token = create_token(settings, "ivan", "t")
    ok = {"Authorization": f"Bearer {token}"}
    assert anonymous.get("/api/v1/jobs", headers=ok).status_code == 200
    revoke_token(settings, list_tokens(settings, "ivan")[0].id)
    _assert_unauthorized(anonymous.get("/api/v1/jobs", headers=ok), invalid_token=True)
    other = create_token(settings, "ivan", "t2")
    disable_user(settings, "ivan")
    _assert_unauthorized(anonymous.get("/api/v1/jobs", headers={"Authorization": f"Bearer {other}"}), True)


def test_a_user_reaches_none_of_another_users_work_but_an_admin_reaches_all(
    settings: Settings, client: FlaskClient, alice: FlaskClient, bob: FlaskClient
) -> None:
    created = bob.post("/api/v1/jobs", json=EVALUATE)
    assert created.status_code == 201 and created.json["owner"] == "bob"
    job_id = created.json["id"]
    assert run_shard(settings, job_id, 0, "cpu-test@host", ModelCache()) == "succeeded"
    sweep = {"models": ["digits-cnn"], "frameworks": ["onnxruntime"], "dataset": "digits", "batch_sizes": [1, 8]}
    comparison = bob.post("/api/v1/comparisons", json=sweep)
    assert comparison.status_code == 201, comparison.json
    queued = bob.post("/api/v1/jobs", json=EVALUATE).json["id"]
    reads = [
        f"/api/v1/jobs/{job_id}",
        f"/api/v1/results/{job_id}",
        f"/api/v1/results/{job_id}/outputs",
        f"/api/v1/jobs/{job_id}/trace",
        f"/api/v1/comparisons/{comparison.json['id']}",
    ]
    for path in reads:
        assert bob.get(path).status_code == 200, path
        assert client.get(path).status_code == 200, path  # the admin
        refused = alice.get(path)
        # Exactly what an id that exists nowhere gets: existence is not leaked.
        nowhere = "0" * 36
        missing = alice.get(path.replace(job_id, nowhere).replace(comparison.json["id"], nowhere))
        assert refused.status_code == missing.status_code == 404, path
        answer = refused.json["error"]["message"].replace(job_id, nowhere).replace(comparison.json["id"], nowhere)
        assert answer == missing.json["error"]["message"], path
    cancel = alice.post(f"/api/v1/jobs/{queued}/cancel")
    assert cancel.status_code == 404 and cancel.json["error"] == {
        "message": f"no job {queued!r}",
        "field": "job_id",
        "status": 404,
    }
    assert bob.get(f"/api/v1/jobs/{queued}").json["status"] == "queued"  # alice's cancel changed nothing

    assert [j["owner"] for j in alice.get("/api/v1/jobs").json["jobs"]] == []
    assert {j["owner"] for j in bob.get("/api/v1/jobs").json["jobs"]} == {"bob"}
    assert alice.get("/api/v1/comparisons").json["comparisons"] == []
    assert len(bob.get("/api/v1/comparisons").json["comparisons"]) == 1
    refused = alice.get("/api/v1/jobs?owner=bob")
    assert refused.status_code == 403 and refused.json["error"]["field"] == "owner"
    everyone = {j["owner"] for j in client.get("/api/v1/jobs").json["jobs"]}
    assert everyone == {"bob"} and len(client.get("/api/v1/jobs?owner=alice").json["jobs"]) == 0
    assert client.post(f"/api/v1/jobs/{queued}/cancel").status_code == 202  # the admin may cancel anyone's


def test_private_uploads_are_their_owners_and_shared_ones_need_a_publisher(
    app: Flask, settings: Settings, client: FlaskClient, alice: FlaskClient, bob: FlaskClient, digits_zip
) -> None:
    assert _upload(bob, "bobs-digits", digits_zip(12)).status_code == 201
    names = lambda c: {d["name"] for d in c.get("/api/v1/datasets").json["datasets"] if d["source"] == "upload"}  # noqa: E731
    assert names(bob) == {"bobs-digits"} and names(alice) == set() and names(client) == {"bobs-digits"}
    assert alice.get("/api/v1/datasets/bobs-digits").status_code == 404
    refused = alice.post("/api/v1/jobs", json={**EVALUATE, "dataset": "bobs-digits"})
    assert refused.status_code == 404 and refused.json["error"]["field"] == "dataset"
    refused = alice.post("/api/v1/comparisons", json={"models": ["digits-cnn"], "dataset": "bobs-digits"})
    assert refused.status_code == 404 and refused.json["error"]["field"] == "dataset"
    taken = _upload(alice, "bobs-digits", digits_zip(12))  # the same bytes under bob's name: still bob's name
    assert taken.status_code == 409 and taken.json["error"]["field"] == "name"
    assert alice.delete("/api/v1/datasets/bobs-digits").status_code == 404

    refused = _upload(alice, "for-all", digits_zip(10), shared="true")
    assert refused.status_code == 403 and refused.json["error"]["field"] == "shared"
    assert _upload(alice, "for-all", digits_zip(10), shared="maybe").json["error"]["field"] == "shared"
    publisher = sign_in(app.test_client(), settings, "pat", "publisher", web=False)
    assert _upload(publisher, "for-all", digits_zip(10), shared="true").status_code == 201
    assert "for-all" in names(alice) and alice.get("/api/v1/datasets/for-all").json["shared"] is True
    assert alice.post("/api/v1/jobs", json={**EVALUATE, "dataset": "for-all"}).status_code == 201
    busy = publisher.delete("/api/v1/datasets/for-all")  # alice's job is still queued on it
    assert busy.status_code == 409 and busy.json["error"]["field"] == "name"
    assert alice.delete("/api/v1/datasets/for-all").status_code == 403  # visible to her, but not hers to remove

    assert bob.delete("/api/v1/datasets/bobs-digits").status_code == 204
    assert bob.get("/api/v1/datasets/bobs-digits").status_code == 404
    assert open_object_store(settings).list("datasets/bobs-digits/") == []
    assert bob.delete("/api/v1/datasets/digits").status_code == 409  # a catalog dataset is a manifest


def test_per_job_reports_show_a_user_only_their_own_jobs(app, client, settings) -> None:
    from support import sign_in

    from carml.jobs.execution import run_shard
    from carml.jobs.model_cache import ModelCache

    body = {
        "kind": "evaluate",
        "model": "digits-cnn",
        "framework": "onnxruntime",
        "dataset": "digits",
        "limit": 8,
        "batch_size": 2,
    }
    mine = client.post("/api/v1/jobs", json=body).json["id"]
    bob = sign_in(app.test_client(), settings, name="bob", role="user", web=False)
    theirs = bob.post("/api/v1/jobs", json=body).json["id"]
    models = ModelCache()
    for job_id in (mine, theirs):
        assert run_shard(settings, job_id, 0, "cpu-test@host", models) == "succeeded"
    for report in ("evaluation_summary", "stage_breakdown"):
        seen = {row["job_id"] for row in bob.get(f"/api/v1/reports/{report}").json["rows"]}
        assert seen == {theirs}, report
        admin_seen = {row["job_id"] for row in client.get(f"/api/v1/reports/{report}").json["rows"]}
        assert admin_seen == {mine, theirs}, report

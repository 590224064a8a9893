"""Every form POST of the UI needs the session's CSRF token; the JSON API does not use one."""

from __future__ import annotations

import io

import pytest
from support import sign_in

POSTS = ("/try", "/validate", "/datasets/upload", "/jobs/{job}/cancel", "/jobs/{job}/retry")


@pytest.mark.parametrize("path", POSTS)
def test_a_post_without_the_token_is_a_400_saying_why(client, evaluate, enqueued, path) -> None:
    job_id = evaluate()
    enqueued.clear()
    client.get("/try")  # a session exists, but the form below does not carry its token
    response = client.post(path.format(job=job_id), data={"model": "digits-cnn", "sample": "digit-1.png"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert response.mimetype == "text/html" and "CSRF token is missing or does not match" in html
    assert enqueued == []
    assert client.get(f"/api/v1/jobs/{job_id}").json["status"] == "queued"  # not cancelled


@pytest.mark.parametrize("path", POSTS)
def test_a_wrong_token_is_refused(client, token, evaluate, path) -> None:
    job_id = evaluate()
    response = client.post(path.format(job=job_id), data={"csrf_token": token[::-1]})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)


def test_a_token_from_another_session_is_refused(app, settings, token) -> None:
    other = sign_in(app.test_client(), settings)  # logged in as the same user, but in another session
    response = other.post("/try", data={"csrf_token": token, "sample": "digit-1.png"})
    assert response.status_code == 400


def test_a_multipart_post_without_the_token_is_refused(client) -> None:
    client.get("/datasets/upload")
    response = client.post("/datasets/upload", data={"name": "x", "file": (io.BytesIO(b"x"), "x.zip")})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)


def test_the_header_carries_the_token_for_scripts(client, token, evaluate) -> None:
    job_id = evaluate()
    response = client.post(f"/jobs/{job_id}/cancel", headers={"X-CSRF-Token": token})
    assert response.status_code == 303


def test_every_form_carries_the_token(client, evaluate) -> None:
    evaluate()
    for path in ("/try", "/validate", "/datasets/upload", "/jobs"):
        html = client.get(path).get_data(as_text=True)
        assert html.count("<form") - html.count('method="get"') == html.count('name="csrf_token"'), path


def test_the_json_api_needs_no_token(client) -> None:
    body = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits", "limit": 5}
    assert client.post("/api/v1/jobs", json=body).status_code == 201

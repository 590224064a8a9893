"""Try it, Validate and Upload: server-side validation puts each message next to its field; good forms submit."""

from __future__ import annotations

import io
import re

import pytest

from carml.db.models import Job
from carml.db.session import session_scope


def field_error(html: str, field: str) -> str | None:
    """The message shown next to `field`, if any."""
    found = re.search(rf'<p class="field-error" id="{field}-error" role="alert">([^<]*)</p>', html)
    return found.group(1) if found else None


def _try(client, token, **fields):
    form = {"csrf_token": token, "model": "digits-cnn", "framework": "onnxruntime", "hardware_tag": "cpu", **fields}
    return client.post("/try", data={k: v for k, v in form.items() if v is not None})


def test_try_submits_a_sample_prediction_and_redirects_to_the_job(client, token, enqueued, settings) -> None:
    response = _try(client, token, sample="digit-3.png", top_k="3")
    assert response.status_code == 303
    job_id = response.headers["Location"].rsplit("/", 1)[-1]
    assert response.headers["Location"].endswith(f"/jobs/{job_id}")
    assert enqueued == [(job_id, 0, "cpu")]
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.kind == "predict" and job.parameters["top_k"] == 3
        assert [i["name"] for i in job.parameters["inputs"]] == ["digit-3.png"]
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and "Prediction job submitted" in page.get_data(as_text=True)


def test_try_submits_uploaded_files(client, token, enqueued) -> None:
    files = [(io.BytesIO(b"\x89PNG not really"), "a.png"), (io.BytesIO(b"second"), "b.png")]
    response = _try(client, token, file=files)
    assert response.status_code == 303 and len(enqueued) == 1


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({}, "file", "upload a file, paste an image URL or choose a sample"),
        ({"sample": "digit-1.png", "file": (io.BytesIO(b"x"), "x.png")}, "sample", "give one input"),
        ({"url": "http://127.0.0.1/secret.png"}, "url", "127.0.0.1, a loopback address"),
        ({"url": "file:///etc/passwd"}, "url", "only http and https"),
        ({"sample": "../../etc/passwd"}, "sample", "no sample named"),
        ({"sample": "digit-1.png", "model": ""}, "model", "choose a model"),
        ({"sample": "digit-1.png", "model": "no-such-model"}, "model", "unknown model"),
        ({"sample": "digit-1.png", "model": "../x.yaml"}, "model", "not a valid"),
        ({"sample": "digit-1.png", "framework": "caffe"}, "framework", "has no caffe manifest"),
        ({"sample": "digit-1.png", "framework": ""}, "framework", "pick one"),
        (
            {"sample": "digit-1.png", "hardware_tag": "nvidia-h100"},
            "hardware_tag",
            "carml worker --hardware nvidia-h100",
        ),
        ({"sample": "digit-1.png", "hardware_tag": "bad tag"}, "hardware_tag", "not a valid"),
        ({"sample": "digit-1.png", "top_k": "0"}, "top_k", "between 1 and 1000"),
        ({"sample": "digit-1.png", "top_k": "many"}, "top_k", "whole number"),
    ],
)
def test_try_shows_each_problem_next_to_its_field(client, token, enqueued, fields, field, message) -> None:
    response = _try(client, token, **fields)
    html = response.get_data(as_text=True)
    assert response.status_code == 400, html[:2000]
    shown = field_error(html, field)
    assert shown is not None and message in shown.replace("&#39;", "'"), (field, shown)
    assert 'id="form-error"' in html and f'aria-describedby="{field}-error"' in html
    assert enqueued == []


def test_try_refuses_a_file_over_the_limit_and_shows_the_limit(client, token, monkeypatch) -> None:
    import webapp.ui.try_it

    assert "Up to 64 MiB per file" in client.get("/try").get_data(as_text=True)
    monkeypatch.setattr(webapp.ui.try_it, "MAX_INPUT_BYTES", 1024)
    response = _try(client, token, file=(io.BytesIO(b"x" * 1025), "big.png"))
    assert response.status_code == 400
    assert "big.png is larger than" in (field_error(response.get_data(as_text=True), "file") or "")


def test_a_request_over_the_app_limit_is_refused_on_the_form(app, client, token) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 2048
    response = _try(client, token, file=(io.BytesIO(b"x" * 4096), "huge.png"))
    assert response.status_code == 413
    assert "larger than the" in (field_error(response.get_data(as_text=True), "file") or "")


def test_try_keeps_the_values_after_an_error(client, token) -> None:
    html = _try(client, token, sample="digit-5.png", top_k="x").get_data(as_text=True)
    assert re.search(r'value="digits-cnn"[^>]*selected', html)
    assert re.search(r'value="onnxruntime"\s+selected', html)
    assert re.search(r'value="digit-5.png"\s+selected', html)


def _validate(client, token, **fields):
    form = {
        "csrf_token": token,
        "model": "digits-cnn",
        "framework": "onnxruntime",
        "dataset": "digits",
        "hardware_tag": "cpu",
        "batch_size": "16",
        "limit": "40",
        "shards": "2",
        **fields,
    }
    return client.post("/validate", data=form)


def test_validate_submits_an_evaluation(client, token, enqueued, settings) -> None:
    response = _validate(client, token)
    assert response.status_code == 303
    job_id = response.headers["Location"].rsplit("/", 1)[-1]
    assert enqueued == [(job_id, 0, "cpu"), (job_id, 1, "cpu")]
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.batch_size == 16 and job.parameters["limit"] == 40 and job.shard_count == 2


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"dataset": ""}, "dataset", "choose a dataset"),
        ({"dataset": "no-such-data"}, "dataset", "no dataset named"),
        ({"dataset": "/etc/passwd"}, "dataset", "not a valid"),
        ({"batch_size": "0"}, "batch_size", "between 1 and 4096"),
        ({"batch_size": "-3"}, "batch_size", "whole number"),
        ({"limit": "0"}, "limit", "between 1 and"),
        ({"shards": "65"}, "shards", "between 1 and 64"),
        ({"model": "no-such-model"}, "model", "unknown model"),
        ({"hardware_tag": "gpu-nowhere"}, "hardware_tag", "no live worker"),
    ],
)
def test_validate_shows_each_problem_next_to_its_field(client, token, enqueued, fields, field, message) -> None:
    response = _validate(client, token, **fields)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    shown = field_error(html, field)
    assert shown is not None and message in shown, (field, shown)
    assert enqueued == []


def test_validate_is_prefilled_from_the_query_string(client) -> None:
    html = client.get("/validate?model=digits-cnn&dataset=digits-png").get_data(as_text=True)
    assert re.search(r'value="digits-cnn"[^>]*selected', html)
    assert re.search(r'value="digits-png"\s+selected', html)


def test_upload_reports_what_was_accepted(client, token, digits_zip) -> None:
    page = client.get("/datasets/upload").get_data(as_text=True)
    assert "Up to 512 MiB" in page
    data = digits_zip(30, extra={"my-digits/3/notes.txt": b"hi"})
    form = {"csrf_token": token, "name": "my-digits", "file": (io.BytesIO(data), "my-digits.zip")}
    response = client.post("/datasets/upload", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:2000]
    assert 'id="upload-report"' in html and 'data-items="30"' in html
    assert 'id="rejected-table"' in html and "not an image file (.txt)" in html
    assert "0, 1, 2, 3" in html  # the classes
    # The upload is now offered by the Validate form.
    assert 'value="my-digits"' in client.get("/validate").get_data(as_text=True)


@pytest.mark.parametrize(
    ("name", "file", "field", "message"),
    [
        ("", (b"x", "a.zip"), "name", "choose dataset name"),
        ("Bad Name", (b"x", "a.zip"), "name", "not a valid"),
        ("digits", (b"x", "a.zip"), "name", "catalog dataset"),
        ("mine", None, "file", "choose a file"),
        ("mine", (b"hello", "notes.txt"), "file", "expected one of the endings"),
        ("mine", (b"not a zip", "data.zip"), "file", "cannot read the upload"),
    ],
)
def test_upload_shows_each_problem_next_to_its_field(client, token, name, file, field, message) -> None:
    form = {"csrf_token": token, "name": name}
    if file is not None:
        form["file"] = (io.BytesIO(file[0]), file[1])
    response = client.post("/datasets/upload", data=form, content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code in (400, 409), html[:2000]
    shown = field_error(html, field)
    assert shown is not None and message in shown.replace("&#39;", "'"), (field, shown)

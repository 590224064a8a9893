"""The jobs list (paging, filters, live-progress hooks), cancelling and retrying, and a job's page."""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta

from support import TEST_USER, sign_in

from carml.db.base import utcnow
from carml.db.models import Job, JobKind, JobStatus
from carml.db.session import session_scope
from carml.jobs.execution import end_shard


def _insert_jobs(settings, count: int, **fields) -> list[str]:
    """Job rows written directly (no shards): quick to make many. Newest last."""
    start = utcnow() - timedelta(hours=1)
    ids = []
    with session_scope(settings.database) as session:
        for i in range(count):
            job_id = str(uuid.uuid4())
            values = {
                "kind": JobKind.EVALUATE,
                "status": JobStatus.SUCCEEDED,
                "owner": TEST_USER,
                "model_name": "digits-cnn",
                "framework": "onnxruntime",
                "dataset_name": "digits",
                "hardware_tag": "cpu",
                "batch_size": 32,
                "progress_total": 10,
                "progress_done": 10,
                "created_at": start + timedelta(seconds=i),
                "started_at": start + timedelta(seconds=i),
                "finished_at": start + timedelta(seconds=i + 2.5),
                **fields,
            }
            session.add(Job(id=job_id, **values))
            ids.append(job_id)
    return ids


def _listed(client, query: str = "") -> list[str]:
    response = client.get(f"/jobs{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return re.findall(r'<tr data-job-id="([0-9a-f-]{36})"', response.get_data(as_text=True))


def test_the_list_is_paginated_newest_first(client, settings) -> None:
    ids = _insert_jobs(settings, 30)
    newest_first = list(reversed(ids))
    assert _listed(client) == newest_first[:25]
    assert _listed(client, "?page=2") == newest_first[25:]
    assert _listed(client, "?per_page=10&page=3") == newest_first[20:]
    html = client.get("/jobs?per_page=10&page=2").get_data(as_text=True)
    assert "Page 2 of 3 · 30 jobs" in html
    assert (
        'rel="prev" href="/jobs?per_page=10&amp;page=1"' in html
        and 'rel="next" href="/jobs?per_page=10&amp;page=3"' in html
    )
    assert "2.5 s" in html  # the duration
    assert "There are no jobs on this page" in client.get("/jobs?page=9").get_data(as_text=True)


def test_filters(client, settings) -> None:
    succeeded = _insert_jobs(settings, 2)
    failed = _insert_jobs(settings, 1, status=JobStatus.FAILED, error="boom")
    gpu = _insert_jobs(settings, 1, hardware_tag="nvidia-h100", model_name="other-model")
    assert _listed(client, "?status=failed") == failed
    assert set(_listed(client, "?status=succeeded")) == set(succeeded + gpu)
    assert _listed(client, "?hardware_tag=nvidia-h100") == gpu
    assert _listed(client, "?model=other-model") == gpu
    assert _listed(client, "?model=digits-cnn&status=succeeded") == list(reversed(succeeded))
    assert "No job matches these filters" in client.get("/jobs?status=cancelled").get_data(as_text=True)


def test_bad_filters_are_shown_next_to_the_field(client) -> None:
    for query, field in (("status=done", "status"), ("hardware_tag=a b", "hardware_tag"), ("page=0", "page")):
        response = client.get(f"/jobs?{query}")
        assert response.status_code == 400, query
        assert f'id="{field}-error"' in response.get_data(as_text=True), query


def test_rows_carry_what_live_progress_needs(client, evaluate, settings) -> None:
    queued = evaluate()
    done = _insert_jobs(settings, 1)[0]
    html = client.get("/jobs").get_data(as_text=True)
    row = re.search(rf'<tr data-job-id="{queued}"[^>]*>', html).group(0)
    assert 'data-final="false"' in row and 'data-status="queued"' in row
    assert f'data-api-url="/api/v1/jobs/{queued}"' in row
    assert re.search(rf'<tr data-job-id="{done}"[^>]*data-final="true"', html)
    assert 'class="inline-form cancel-form"' in html and 'src="/static/carml.js"' in html


def test_cancel_from_the_list_returns_to_it(client, token, evaluate) -> None:
    job_id = evaluate()
    response = client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": token, "next": "/jobs?status=queued"})
    assert response.status_code == 303 and response.headers["Location"] == "/jobs?status=queued"
    assert client.get(f"/api/v1/jobs/{job_id}").json["status"] == "cancelled"
    again = client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": token, "next": "https://evil.example/"})
    assert again.headers["Location"] == f"/jobs/{job_id}"  # never off the site
    assert "already finished" in client.get(f"/jobs/{job_id}").get_data(as_text=True)


def test_retry_resubmits_a_failed_evaluation(client, token, evaluate, settings, enqueued) -> None:
    job_id = evaluate(limit=30, batch_size=4, shards=2)
    end_shard(settings, job_id, 0, JobStatus.FAILED, "the worker ran out of memory")
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "the worker ran out of memory" in html and 'class="inline-form retry-form"' in html
    enqueued.clear()
    response = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": token})
    assert response.status_code == 303
    new_id = response.headers["Location"].rsplit("/", 1)[-1]
    assert new_id != job_id and [e[0] for e in enqueued] == [new_id, new_id]
    old, new = (client.get(f"/api/v1/jobs/{i}").json for i in (job_id, new_id))
    for key in ("model", "framework", "dataset", "hardware_tag", "batch_size", "shards", "progress"):
        assert new[key] == ({**old, "progress": {"done": 0, "total": 30}})[key], key


def test_retry_resubmits_a_failed_prediction_with_its_inputs(client, token, predict, settings) -> None:
    job_id = predict("digits-cnn", "digit-4.png", run=False)
    end_shard(settings, job_id, 0, JobStatus.FAILED, "lost")
    response = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": token})
    new_id = response.headers["Location"].rsplit("/", 1)[-1]
    with session_scope(settings.database) as session:
        new = session.get(Job, new_id)
        assert new is not None and [i["name"] for i in new.parameters["inputs"]] == ["digit-4.png"]


def test_only_failed_jobs_are_retried(client, token, evaluate) -> None:
    job_id = evaluate()
    response = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == f"/jobs/{job_id}"
    assert "only failed jobs can be retried" in client.get(f"/jobs/{job_id}").get_data(as_text=True)


def test_a_queued_job_page_follows_its_progress(client, evaluate) -> None:
    job_id = evaluate()
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    section = re.search(r'<section id="job"[^>]*>', html).group(0)
    assert 'data-final="false"' in section and f'data-api-url="/api/v1/jobs/{job_id}"' in section
    assert 'id="job-progress"' in html and 'id="job-waiting"' in html
    assert 'id="latency-chart"' not in html  # no result yet: no charts, no Chart.js


def test_running_jobs_show_progress(client, evaluate, settings) -> None:
    job_id = evaluate(limit=40)
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        job.status, job.progress_done, job.started_at = JobStatus.RUNNING, 10, utcnow()
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'aria-valuenow="10"' in html and 'style="width: 25%"' in html and "10 / 40" in html


def test_retry_refuses_an_upload_removed_and_taken_by_another_user(
    app, client, token, settings, digits_zip, enqueued
) -> None:
    def upload(as_client, data: bytes) -> None:
        form = {"name": "my-digits", "file": (io.BytesIO(data), "digits.zip")}
        response = as_client.post("/api/v1/datasets", data=form, content_type="multipart/form-data")
        assert response.status_code == 201, response.json

    upload(client, digits_zip(20))
    evaluated = client.post(
        "/api/v1/jobs",
        json={"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "my-digits"},
    )
    job_id = evaluated.json["id"]
    end_shard(settings, job_id, 0, JobStatus.FAILED, "lost")
    assert client.delete("/api/v1/datasets/my-digits").status_code in (200, 204)
    upload(sign_in(app.test_client(), settings, name="bob", role="user"), digits_zip(24))  # bob's own, private
    enqueued.clear()
    response = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == f"/jobs/{job_id}"
    assert "was removed or replaced since this job ran" in client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert enqueued == []  # nothing ran on bob's data

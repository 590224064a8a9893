"""Scenarios on the web pages: the Validate form's Scenario section, its errors, and the verdict on the job page."""

from __future__ import annotations

import html as html_lib
import re

import pytest

from carml.db.models import Job
from carml.db.session import session_scope
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache


def _field_error(page: str, field: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="{field}-error" role="alert">([^<]*)</p>', page)
    return html_lib.unescape(found.group(1)) if found else None


def _validate(client, token, **fields):
    form = {
        "csrf_token": token,
        "model": "digits-cnn",
        "framework": "onnxruntime",
        "dataset": "digits",
        "hardware_tag": "cpu",
        **fields,
    }
    return client.post("/validate", data=form)


def test_the_validate_form_offers_every_scenario(client) -> None:
    page = client.get("/validate").get_data(as_text=True)
    assert 'id="scenario-fields"' in page
    for value in ("accuracy", "single-stream", "offline", "server"):
        assert f'<option value="{value}"' in page
    assert re.search(r'<option value="accuracy"\s+selected', page)
    assert 'name="target_qps"' in page and 'name="latency_bound_ms"' in page and 'name="seed"' in page


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"scenario": "server", "latency_bound_ms": "50"}, "target_qps", "the server scenario needs target_qps"),
        ({"scenario": "server", "target_qps": "lots", "latency_bound_ms": "50"}, "target_qps", "must be a number"),
        ({"scenario": "offline", "min_query_count": "1.5"}, "min_query_count", "must be a whole number"),
        ({"scenario": "offline", "shards": "4"}, "shards", "shards must be 1"),
        ({"scenario": "single-stream", "latency_bound_ms": "9"}, "latency_bound_ms", "server scenario only"),
        ({"scenario": "sideways"}, "scenario", "choose a scenario from the list"),
    ],
)
def test_scenario_errors_show_next_to_their_field(client, token, enqueued, fields, field, message) -> None:
    response = _validate(client, token, **fields)
    assert response.status_code == 400
    error = _field_error(response.get_data(as_text=True), field)
    assert error is not None and message in error, error
    assert enqueued == []


def test_a_scenario_job_page_shows_its_verdict_reasons_and_windows(client, token, settings, worker_id) -> None:
    fields = {"scenario": "single-stream", "min_duration_s": "0.2", "max_duration_s": "0.2"}
    response = _validate(client, token, **fields, min_query_count="1000000", seed="9")
    assert response.status_code == 303, response.get_data(as_text=True)
    job_id = response.headers["Location"].rsplit("/", 1)[-1]
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.scenario == "single-stream"
        assert job.parameters["scenario_options"]["seed"] == 9
    assert run_shard(settings, job_id, 0, worker_id, ModelCache()) == "succeeded"
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    verdict = re.search(r'id="scenario-verdict">([A-Z]+)<', page)
    assert verdict is not None and verdict.group(1) == "INVALID"  # cut at max_duration_s before 1,000,000 queries
    assert "reached the 0.2 s cap (max_duration_s)" in html_lib.unescape(page)
    assert len(re.findall(r'<tr data-window="\d">', page)) == 3
    assert re.search(r'id="scenario-stability">(stable|UNSTABLE|stability unknown)<', page)
    assert '<dd id="job-scenario">single-stream</dd>' in page

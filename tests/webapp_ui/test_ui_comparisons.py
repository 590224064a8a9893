"""The Compare form, the comparisons list and a comparison's page with its legs side by side."""

from __future__ import annotations

import re

import pytest

from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.workers import register_worker


@pytest.fixture()
def two_tags(settings) -> list[str]:
    register_worker(settings, "cpu-1thread-test@host", "cpu-1thread")
    return ["cpu", "cpu-1thread"]


def _form(token: str, **changes: object) -> dict[str, object]:
    form = {
        "csrf_token": token,
        "models": ["digits-cnn"],
        "frameworks": ["onnxruntime"],
        "dataset": "digits",
        "hardware_tags": ["cpu", "cpu-1thread"],
        "batch_sizes": "16",
        "limit": "32",
    }
    return {k: v for k, v in {**form, **changes}.items() if v is not None}


def test_the_form_offers_models_datasets_and_live_tags(client, two_tags) -> None:
    page = client.get("/compare").get_data(as_text=True)
    for tag in two_tags:
        assert f'name="hardware_tags" value="{tag}"' in page
    assert '<option value="digits-cnn"' in page and '<option value="digits"' in page
    assert 'data-nav="compare"' in page


def test_a_submitted_comparison_shows_its_legs_side_by_side(client, token, settings, worker_id, two_tags) -> None:
    response = client.post("/compare", data=_form(token, batch_sizes="8, 16"))
    assert response.status_code == 303, response.get_data(as_text=True)
    comparison_id = response.headers["Location"].rsplit("/", 1)[-1]
    summary = client.get(f"/api/v1/comparisons/{comparison_id}").json
    assert len(summary["legs"]) == 4
    models = ModelCache()
    for leg in summary["legs"][:2]:
        assert run_shard(settings, leg["job_id"], 0, worker_id, models) == "succeeded"
    page = client.get(f"/comparisons/{comparison_id}").get_data(as_text=True)
    rows = re.findall(r'<tr data-leg="(\d+)" data-job-id="([^"]+)">', page)
    assert [int(leg) for leg, _ in rows] == [0, 1, 2, 3]
    assert page.count("data-job-status>succeeded<") == 2 and page.count("data-job-status>queued<") == 2
    assert 'data-status="running"' in page and "2 / 4" in page  # partial results while legs run
    assert '<strong class="best"' in page  # the best values among finished legs are marked
    for chart in ("top1", "latency", "throughput", "energy", "cost"):
        assert f'id="compare-{chart}-chart"' in page
    listing = client.get("/comparisons").get_data(as_text=True)
    assert f'data-comparison-id="{comparison_id}"' in listing and "2 / 4" in listing


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"models": None}, "models", "choose one or more models"),
        ({"hardware_tags": None}, "hardware_tags", "choose one or more hardware tags"),
        ({"batch_sizes": "8, x"}, "batch_sizes", "is not a batch size"),
        ({"dataset": "nope"}, "dataset", "there is no dataset named"),
        ({"hardware_tags": ["cpu"]}, "hardware_tags", "at least two legs"),
        ({"hardware_tags": ["cpu", "nvidia-h100"]}, "hardware_tags", "no live worker serves"),
        ({"title": "a\x00b"}, "title", "no control characters"),
        ({"scenario": "server"}, "target_qps", "needs target_qps"),
    ],
)
def test_form_errors_are_shown_next_to_their_field(client, token, two_tags, changes, field, message) -> None:
    response = client.post("/compare", data=_form(token, **changes))
    assert response.status_code in (400, 409), response.status_code
    page = response.get_data(as_text=True)
    error = re.search(rf'<p class="field-error" id="{field}-error" role="alert">([^<]*)</p>', page)
    assert error and message in error.group(1), page[:2000]
    assert client.get("/api/v1/comparisons").json["comparisons"] == []


def test_an_unknown_comparison_page_is_a_404(client) -> None:
    assert client.get("/comparisons/0000").status_code == 404
    assert client.get("/comparisons/<script>").status_code == 404

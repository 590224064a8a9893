"""Integer fields of the API accept the float a JavaScript client sends for a whole number (150.0 for 150), and
still refuse fractions, NaN, infinities, booleans and strings with a 400 naming the field."""

from __future__ import annotations

import json

import pytest

from carml.db.models import Job
from carml.db.session import session_scope

BODY = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits"}


def test_whole_floats_are_integers_everywhere_they_are_stored(client, settings, enqueued) -> None:
    response = client.post("/api/v1/jobs", json={**BODY, "batch_size": 16.0, "limit": 150.0, "shards": 2.0})
    assert response.status_code == 201, response.json
    job = response.json
    assert (job["batch_size"], job["shards"], job["progress"]["total"]) == (16, 2, 150)
    assert isinstance(job["batch_size"], int) and len(enqueued) == 2
    with session_scope(settings.database) as session:
        stored = session.get(Job, job["id"])
        # Stored as JSON: 150.0 would come back as a float and be written as "150.0" in every export.
        assert stored.parameters["limit"] == 150 and isinstance(stored.parameters["limit"], int)
        assert stored.batch_size == 16 and stored.shard_count == 2


def test_whole_floats_in_a_scenario_and_in_a_comparison(client) -> None:
    scenario = {**BODY, "scenario": "offline", "min_query_count": 64.0, "sample_count": 32.0, "seed": 7.0}
    response = client.post("/api/v1/jobs", json=scenario)
    assert response.status_code == 201, response.json

    comparison = {"models": ["digits-cnn"], "dataset": "digits", "frameworks": ["onnxruntime"], "limit": 20.0}
    response = client.post("/api/v1/comparisons", json={**comparison, "batch_sizes": [8.0, 16]})
    assert response.status_code == 201, response.json
    assert sorted(leg["batch_size"] for leg in response.json["legs"]) == [8, 16]


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ('"batch_size": 16.5', "batch_size", "batch_size must be an integer, got 16.5"),
        ('"limit": NaN', "limit", "limit must be an integer, got NaN"),
        ('"limit": Infinity', "limit", "limit must be an integer, got Infinity"),
        ('"shards": -Infinity', "shards", "shards must be an integer, got -Infinity"),
        ('"shards": true', "shards", "shards must be an integer, got true"),
        ('"batch_size": "16"', "batch_size", 'batch_size must be an integer, got "16"'),
        ('"batch_size": 0.0', "batch_size", "batch_size must be between 1 and"),
        ('"limit": 1e300', "limit", "limit must be between 1 and 2147483647"),
        ('"scenario": "offline", "min_query_count": 64.5', "min_query_count", "must be an integer, got 64.5"),
        ('"scenario": "offline", "seed": NaN', "seed", "seed must be an integer, got NaN"),
        ('"scenario": "offline", "sample_count": true', "sample_count", "sample_count must be an integer, got true"),
    ],
)
def test_other_numbers_are_400s_naming_the_field(client, enqueued, raw: str, field: str, message: str) -> None:
    # Raw JSON: NaN and Infinity are what JavaScript's number type can hold, and Python's parser reads them.
    body = json.dumps(BODY)[:-1] + ", " + raw + "}"
    response = client.post("/api/v1/jobs", data=body, content_type="application/json")
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["field"] == field and message in error["message"], error
    assert enqueued == [] and client.get("/api/v1/jobs").json["jobs"] == []


@pytest.mark.parametrize("size", [8.5, True, "8", float("inf")])
def test_a_comparison_refuses_batch_sizes_that_are_no_whole_numbers(client, size) -> None:
    body = {"models": ["digits-cnn"], "dataset": "digits", "frameworks": ["onnxruntime"], "batch_sizes": [8, size]}
    response = client.post("/api/v1/comparisons", data=json.dumps(body), content_type="application/json")
    error = response.json["error"]
    assert response.status_code == 400 and error["field"] == "batch_sizes", response.json
    # The value as the client wrote it (JSON's true, Infinity, "8"), not Python's spelling.
    assert error["message"].startswith(f"batch_sizes: {json.dumps(size)} is not a whole number"), error
    assert client.get("/api/v1/comparisons").json["comparisons"] == []

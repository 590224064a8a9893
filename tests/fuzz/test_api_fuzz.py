"""Fuzzing the REST API from its own OpenAPI document: no request, however odd, gets a 5xx or an off-spec answer.

Schemathesis generates requests for every operation in /api/openapi.json (valid ones and invalid ones) and sends
them, with a user's bearer token, to the real app in-process on the embedded backends, with real data in place:
an uploaded dataset, a finished evaluation with outputs, a finished prediction and a queued comparison. Some
generated requests have their path parameters and body fields swapped for those real names and ids, so that
the code behind the 404s is fuzzed too.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from hypothesis import strategies as st
from PIL import Image
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from carml.accounts import create_token, create_user
from carml.datasets.digits import load_digits_split
from carml.db.migrate import upgrade
from carml.db.models import Role
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.workers import register_worker
from carml.settings import Settings, load_settings
from webapp import create_app
from webapp.api import API_PREFIX
from webapp.api.openapi import openapi_document

WORKER_ID = "cpu-fuzz@host"
USER = "fuzzer"
# Bounded so that CI time is predictable, and derandomized so that a failure in CI reproduces locally.
EXAMPLES_PER_OPERATION = 30
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
PUBLIC_PATHS = {"/health"}  # what a load balancer probes, without a token


@dataclass(frozen=True)
class RealValues:
    """Values that name things which exist: by path parameter, and by request body field."""

    path: dict[str, list[str]]
    body: dict[str, list[Any]]


@dataclass(frozen=True)
class FuzzedApi:
    """The app under test, the bearer token it accepts, and the real values requests may carry."""

    app: Flask
    token: str
    real: RealValues

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _settings(folder: Path) -> Settings:
    settings = load_settings(
        {
            "CARML_HOME": str(folder / "home"),
            "CARML_CACHE_DIR": str(folder / "cache"),
            "CARML_OBJECT_STORE": str(folder / "objects"),
            # The worker registered below sends no heartbeats; it must stay live for the whole run.
            "CARML_WORKER_ALIVE_S": "86400",
            # No job ends here (nothing runs them), so each `wait` would last all of it; waits have their own tests.
            "CARML_API_MAX_WAIT_S": "0",
        }
    )
    upgrade(settings.database)
    register_worker(settings, WORKER_ID, "cpu")  # so that jobs for the tag "cpu" are accepted
    return settings


def _png(index: int) -> bytes:
    png = io.BytesIO()
    Image.fromarray(load_digits_split("test")[0][index]).save(png, format="PNG")
    return png.getvalue()


def _digits_zip(count: int) -> bytes:
    """The first test digits as PNGs in class folders: an upload the dataset readers accept."""
    labels = load_digits_split("test")[1]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(count):
            archive.writestr(f"{labels[i]}/{i:03d}.png", _png(i))
    return buffer.getvalue()


def _created(response: Any) -> str:
    assert response.status_code == 201, response.json
    return response.json.get("id") or response.json["name"]


def _seed(app: Flask, settings: Settings, headers: dict[str, str]) -> RealValues:
    """Put a dataset, finished jobs and a comparison in place through the API; returns what names them."""
    client = app.test_client()
    zipped = _digits_zip(24)
    upload = {"name": "fuzz-digits", "file": (io.BytesIO(zipped), "digits.zip")}
    dataset = _created(client.post(f"{API_PREFIX}/datasets", data=upload, headers=headers))
    evaluation = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": dataset}
    evaluated = _created(client.post(f"{API_PREFIX}/jobs", json=evaluation, headers=headers))
    predict = {"kind": "predict", "model": "digits-cnn", "files": (io.BytesIO(_png(0)), "a.png")}
    predicted = _created(
        client.post(f"{API_PREFIX}/jobs", data={**predict, "framework": "onnxruntime"}, headers=headers)
    )
    models = ModelCache()
    for job_id in (evaluated, predicted):
        assert run_shard(settings, job_id, 0, WORKER_ID, models) == "succeeded"
    queued = _created(client.post(f"{API_PREFIX}/jobs", json={**evaluation, "limit": 5}, headers=headers))
    comparison = {"models": ["digits-cnn"], "dataset": dataset, "frameworks": ["onnxruntime"], "batch_sizes": [1, 8]}
    compared = _created(client.post(f"{API_PREFIX}/comparisons", json=comparison, headers=headers))
    reports = [r["name"] for r in client.get(f"{API_PREFIX}/reports", headers=headers).json["reports"]]
    return RealValues(
        path={
            "job_id": [evaluated, predicted, queued],
            "comparison_id": [compared],
            "name": [dataset, "digits", "digits-cnn", *reports],
        },
        body={
            "model": ["digits-cnn"],
            "models": [["digits-cnn"]],
            "framework": ["onnxruntime", "pytorch"],
            "frameworks": [["onnxruntime"], ["onnxruntime", "tensorflow"]],
            "dataset": [dataset, "digits"],
            "hardware_tag": ["cpu"],
            "hardware_tags": [["cpu"]],
            "file": [zipped],
            "files": [[_png(1)], [_png(2), b"not an image"]],
        },
    )


@pytest.fixture(scope="module")
def fuzzed_api(tmp_path_factory: pytest.TempPathFactory) -> FuzzedApi:
    settings = _settings(tmp_path_factory.mktemp("fuzz"))
    # A publisher: a plain user's uploads stop at the 403 for `shared`, and the fuzzing should get past it.
    create_user(settings, USER, Role.PUBLISHER)
    token = create_token(settings, USER, "fuzzing")
    # The queue is not under test here: jobs are only recorded, and the seeded ones run in this process.
    app = create_app(settings, lambda job_id, shard, tag: None)
    headers = {"Authorization": f"Bearer {token}"}
    return FuzzedApi(app, token, _seed(app, settings, headers))


@pytest.fixture(scope="module")
def api_schema(fuzzed_api: FuzzedApi) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzzed_api.app)
    # Every generated request carries the token; requests without a valid one have their own test below,
    # so examples are not spent on mangled Authorization headers.
    schema.config.generation.update(with_security_parameters=False)
    return schema


def _operations() -> list[tuple[str, str]]:
    # From the document itself (built in code, without an app), so that a new route is fuzzed without edits here.
    return [(method.upper(), path) for path, item in openapi_document()["paths"].items() for method in item]


def _body_fields(operation: APIOperation, media_type: str) -> set[str]:
    """The fields the request body schema of `operation` declares for `media_type`."""
    document = openapi_document()
    schema = document["paths"][operation.path][operation.method.lower()]["requestBody"]["content"][media_type]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return set(schema.get("properties", {}))


def _with_body(case: schemathesis.Case, fields: dict[str, Any]) -> schemathesis.Case:
    declared = _body_fields(case.operation, case.media_type or "")  # JSON and form bodies declare different fields
    case.body = {**case.body, **{name: value for name, value in fields.items() if name in declared}}
    return case


def _cases(operation: APIOperation, real: RealValues) -> st.SearchStrategy[schemathesis.Case]:
    """Valid and invalid requests for `operation`, and valid ones that name real jobs, models and datasets."""
    strategies = [operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    names = [p.name for p in operation.path_parameters]
    if names and all(name in real.path for name in names):
        chosen = st.fixed_dictionaries({name: st.sampled_from(real.path[name]) for name in names})
        strategies.append(chosen.flatmap(lambda values: operation.as_strategy(path_parameters=values)))
    if operation.body:
        fields = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in real.body.items()})
        with_dict_body = operation.as_strategy().filter(lambda case: isinstance(case.body, dict))
        strategies.append(st.tuples(with_dict_body, fields).map(lambda pair: _with_body(*pair)))
    return st.one_of(strategies)


# NB: one pytest test per operation, driving Hypothesis directly: schemathesis' own lazy pytest integration
# (`schemathesis.pytest.from_fixture`) fails on pytest 9 (it sets `Function._nodeid`, which no longer exists).
@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda value: value)
def test_no_request_gets_a_server_error_or_an_off_schema_answer(
    method: str, path: str, fuzzed_api: FuzzedApi, api_schema: schemathesis.BaseSchema
) -> None:
    operation = api_schema[path][method]

    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=_cases(operation, fuzzed_api.real))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=fuzzed_api.headers, checks=CHECKS)

    check()


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda value: value)
def test_requests_without_a_valid_token_are_refused_with_401(method: str, path: str, fuzzed_api: FuzzedApi) -> None:
    client = fuzzed_api.app.test_client()
    url = API_PREFIX + path.format(**{name: values[0] for name, values in fuzzed_api.real.path.items()})
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Basic {fuzzed_api.token}"}):
        response = client.open(url, method=method, headers=headers)
        if path in PUBLIC_PATHS:
            assert response.status_code == 200, response.json
            continue
        assert response.status_code == 401, (headers, response.status_code, response.get_data(as_text=True)[:300])
        assert response.json["error"]["status"] == 401

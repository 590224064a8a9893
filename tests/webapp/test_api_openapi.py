"""The OpenAPI document: valid OpenAPI 3.1, one entry per route and method, and true to real responses."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from carml.datasets.digits import load_digits_split
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _document(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json


def test_the_document_is_valid_openapi_3_1(client) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    document = _document(client)
    assert document["openapi"].startswith("3.1")
    validator.validate(document)


def test_the_document_lists_every_route_and_method(app, client) -> None:
    document = _document(client)
    prefix = document["servers"][0]["url"]
    routes = {
        (re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule.removeprefix(prefix)), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(prefix + "/")
        for method in rule.methods - IGNORED_METHODS
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routes == documented
    for path, item in document["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for operation in item.values():
            assert {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"} == names, path


def test_responses_match_their_schemas(client, settings, digits_zip) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    components = _document(client)["components"]

    def check(response, schema: str, status: int) -> None:
        assert response.status_code == status, response.json
        # Each component is checked in a root that carries all of them, so that its $refs resolve.
        root = {"$ref": f"#/components/schemas/{schema}", "components": components}
        jsonschema.Draft202012Validator(root).validate(response.json)

    check(client.get("/api/v1/health"), "Health", 200)
    check(client.get("/api/v1/models"), "ModelList", 200)
    check(client.get("/api/v1/models/digits-cnn"), "ModelDetail", 200)
    check(client.get("/api/v1/models/none"), "Error", 404)
    upload = {"name": "mine", "file": (io.BytesIO(digits_zip(12)), "d.zip")}
    check(client.post("/api/v1/datasets", data=upload, content_type="multipart/form-data"), "UploadReport", 201)
    check(client.get("/api/v1/datasets"), "DatasetList", 200)
    check(client.get("/api/v1/datasets/digits"), "DatasetDetail", 200)
    check(client.get("/api/v1/datasets/mine"), "DatasetDetail", 200)
    body = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "mine"}
    created = client.post("/api/v1/jobs", json=body)
    check(created, "Job", 201)
    job_id = created.json["id"]
    assert run_shard(settings, job_id, 0, "cpu-test@host", ModelCache()) == "succeeded"
    check(client.get(f"/api/v1/jobs/{job_id}"), "Job", 200)
    check(client.get("/api/v1/jobs"), "JobList", 200)
    check(client.get(f"/api/v1/results/{job_id}"), "JobResult", 200)
    check(client.post(f"/api/v1/jobs/{job_id}/cancel"), "Error", 409)
    check(client.get("/api/v1/workers"), "WorkerList", 200)
    png = io.BytesIO()
    Image.fromarray(load_digits_split("test")[0][0]).save(png, format="PNG")
    files = [(io.BytesIO(png.getvalue()), "a.png"), (io.BytesIO(b"not an image"), "b.png")]
    predict = {"kind": "predict", "model": "digits-cnn", "framework": "onnxruntime", "files": files}
    created = client.post("/api/v1/jobs", data=predict)
    check(created, "Job", 201)
    assert run_shard(settings, created.json["id"], 0, "cpu-test@host", ModelCache()) == "succeeded"
    check(client.get(f"/api/v1/jobs/{created.json['id']}"), "Job", 200)
    check(client.get(f"/api/v1/results/{created.json['id']}"), "JobResult", 200)


def test_the_document_says_every_operation_but_health_needs_a_bearer_token(client) -> None:
    document = _document(client)
    assert document["components"]["securitySchemes"]["bearer"] == {
        **document["components"]["securitySchemes"]["bearer"],
        "type": "http",
        "scheme": "bearer",
    }
    assert document["security"] == [{"bearer": []}]
    assert "WWW-Authenticate" in document["components"]["responses"]["E401"]["headers"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path == "/health":
                assert operation["security"] == [] and "401" not in operation["responses"]
            else:
                assert operation["responses"]["401"] == {"$ref": "#/components/responses/E401"}, (path, method)
    assert "403" in document["paths"]["/datasets"]["post"]["responses"]
    assert set(document["paths"]["/datasets/{name}"]["delete"]["responses"]) >= {"204", "401", "403", "404", "409"}

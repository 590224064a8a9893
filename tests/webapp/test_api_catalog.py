"""Health, the model and dataset catalog, and the error shape for routes and methods that do not exist."""

from __future__ import annotations

from carml.db.migrate import head


def test_health_reports_the_schema(client) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "sqlite", "schema": {"current": head(), "head": head()}}


def test_models_list_every_framework_with_claims(client) -> None:
    response = client.get("/api/v1/models")
    assert response.status_code == 200
    digits = {m["framework"]: m for m in response.json["models"] if m["name"] == "digits-cnn"}
    assert set(digits) == {"onnxruntime", "pytorch", "tensorflow"}
    entry = digits["onnxruntime"]
    assert entry["task"] == "image-classification" and entry["modality"] == "image"
    assert entry["claimed_top1"] > 0.9 and entry["runnable"] is True
    assert set(entry) == {
        "name",
        "version",
        "framework",
        "task",
        "modality",
        "claimed_top1",
        "claimed_top5",
        "runnable",
        "source",
        "owner",
        "published_at",
    }
    assert (entry["source"], entry["owner"], entry["published_at"]) == ("folder", None, None)


def test_model_detail_has_one_full_manifest_per_framework(client) -> None:
    response = client.get("/api/v1/models/digits-cnn")
    assert response.status_code == 200
    frameworks = response.json["frameworks"]
    assert [f["framework"] for f in frameworks] == ["onnxruntime", "pytorch", "tensorflow"]
    assert all(f["manifest"]["name"] == "digits-cnn" and len(f["manifest_sha256"]) == 64 for f in frameworks)
    assert frameworks[0]["manifest"]["framework"]["name"] == "onnxruntime"


def test_unknown_model_is_a_404_naming_it(client) -> None:
    response = client.get("/api/v1/models/no-such-model")
    assert response.status_code == 404
    assert response.json == {"error": {"message": "unknown model 'no-such-model'", "field": "name", "status": 404}}


def test_datasets_list_and_detail(client) -> None:
    listed = client.get("/api/v1/datasets").json["datasets"]
    assert {"digits", "digits-png"} <= {d["name"] for d in listed}
    assert all(d["source"] == "catalog" for d in listed)
    detail = client.get("/api/v1/datasets/digits-png").json
    assert detail["format"] == "image-folder" and detail["manifest"]["location"]["archive"] == "zip"
    missing = client.get("/api/v1/datasets/nothing-here")
    assert missing.status_code == 404 and missing.json["error"]["field"] == "name"


def test_unknown_routes_methods_and_parameters_answer_json(client) -> None:
    missing = client.get("/api/v1/nowhere")
    assert missing.status_code == 404 and "no such endpoint" in missing.json["error"]["message"]
    wrong_method = client.delete("/api/v1/models")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["Allow"]
    assert wrong_method.json["error"]["status"] == 405
    unknown = client.get("/api/v1/models?colour=red")
    assert unknown.status_code == 400 and unknown.json["error"]["field"] == "colour"
    bad_bool = client.get("/api/v1/workers?alive=maybe")
    assert bad_bool.status_code == 400 and bad_bool.json["error"]["field"] == "alive"


def test_workers_show_hardware_and_liveness(client, settings) -> None:
    from datetime import timedelta

    from carml.db.base import utcnow
    from carml.db.models import Worker
    from carml.db.session import session_scope
    from carml.jobs.workers import register_worker

    register_worker(settings, "gone@host", "gpu-x")
    with session_scope(settings.database) as session:
        session.get(Worker, "gone@host").last_heartbeat = utcnow() - timedelta(seconds=settings.worker_alive_s + 5)
    workers = {w["id"]: w for w in client.get("/api/v1/workers").json["workers"]}
    assert workers["cpu-test@host"]["alive"] is True and workers["gone@host"]["alive"] is False
    assert workers["cpu-test@host"]["cpu_cores"] >= 1 and "onnxruntime" in workers["cpu-test@host"]["frameworks"]
    alive = client.get("/api/v1/workers?alive=true").json["workers"]
    assert [w["id"] for w in alive] == ["cpu-test@host"]
    assert [w["id"] for w in client.get("/api/v1/workers?alive=false").json["workers"]] == ["gone@host"]


def test_creating_the_app_connects_to_nothing_and_a_down_database_is_a_503(tmp_path) -> None:
    from carml.settings import load_settings
    from webapp import create_app

    down = load_settings(
        {
            "CARML_HOME": str(tmp_path),
            "CARML_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/nothing",
            "CARML_BROKER_URL": "redis://127.0.0.1:1/0",
        }
    )
    client = create_app(down).test_client()  # no server listens on port 1: this must not try
    response = client.get("/api/v1/health")
    assert response.status_code == 503 and "cannot read the revision" in response.json["error"]["message"]
    assert client.get("/api/v1/models").status_code == 401  # no token: refused without asking the database
    # A token is checked in the database: with it down, that is the service's fault (503), never a pass.
    assert client.get("/api/v1/models", headers={"Authorization": "Bearer carml_x"}).status_code == 503


def test_control_characters_and_impossible_ids_are_refused_before_the_database(client) -> None:
    response = client.get("/api/v1/jobs?model=a%00b")
    assert response.status_code == 400 and response.json["error"]["field"] == "model"
    for path in ("/api/v1/jobs/a%00b", "/api/v1/results/" + "f" * 80, "/api/v1/results/x%00/outputs"):
        response = client.get(path)
        assert response.status_code == 404 and response.json["error"]["field"] == "job_id", path

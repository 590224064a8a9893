"""`carml models publish` and `carml models remove`, acting as CARML_USER with the role the database gives it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from publishing.manifest_texts import manifest_text

from carml.accounts import create_user
from carml.db.migrate import upgrade
from carml.db.models import Role
from carml.publishing import list_published
from carml.settings import Settings, load_settings


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CARML_HOME", str(tmp_path / "home"))
    for name in ("CARML_DATABASE_URL", "CARML_MANIFEST_DIRS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CARML_USER", "alice")
    settings = load_settings()
    upgrade(settings.database)
    create_user(settings, "alice", Role.PUBLISHER)
    create_user(settings, "carol", Role.USER)
    return settings


def _file(tmp_path: Path, text: str, name: str = "model.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_publish_list_and_remove_a_model(run_cli, settings: Settings, tmp_path: Path) -> None:
    code, out, err = run_cli("models", "publish", _file(tmp_path, manifest_text()))
    assert code == 0, err
    assert out.startswith("digits-published@onnxruntime 1.0.0 created (sha256 ") and "by alice" in out

    code, out, _ = run_cli("models")
    header, *rows = out.splitlines()
    assert header.split()[-2:] == ["SOURCE", "OWNER"]
    row = next(r.split() for r in rows if r.startswith("digits-published "))
    assert row[-2:] == ["published", "alice"]
    listed = {m["name"]: m for m in json.loads(run_cli("models", "--json")[1]) if m["framework"] == "onnxruntime"}
    assert (listed["digits-published"]["source"], listed["digits-published"]["owner"]) == ("published", "alice")
    assert (listed["digits-cnn"]["source"], listed["digits-cnn"]["owner"]) == ("folder", None)

    code, out, _ = run_cli("models", "publish", "--json", _file(tmp_path, manifest_text(version="1.1.0")))
    assert code == 0 and json.loads(out)["outcome"] == "replaced"

    code, out, err = run_cli("models", "remove", "digits-published")
    assert code == 0, err
    assert out.strip() == "digits-published@onnxruntime 1.1.0 removed (published by alice)"
    assert list_published(settings) == []


def test_refusals_are_one_message_and_a_non_zero_exit(run_cli, settings, tmp_path, monkeypatch) -> None:
    local = _file(tmp_path, manifest_text(model_url="digits-cnn.onnx"), "local.yaml")
    code, _, err = run_cli("models", "publish", local)
    assert code == 1 and err.startswith(f"error: {local}:") and "artifacts[0].url: 'digits-cnn.onnx' is a local" in err
    code, _, err = run_cli("models", "remove", "digits-cnn", "-f", "onnxruntime")
    assert code == 1 and "is defined by the manifest file manifests/models/digits-cnn-onnxruntime.yaml" in err
    code, _, err = run_cli("models", "remove", "nothing")
    assert code == 1 and err.strip() == "error: no published model 'nothing'"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    code, _, err = run_cli("models", "publish", str(binary))
    assert code == 1 and err.strip() == f"error: {binary}: not UTF-8 text"
    code, _, err = run_cli("models", "publish", str(tmp_path / "missing.yaml"))
    assert code == 2 and "does not exist" in err

    monkeypatch.setenv("CARML_USER", "carol")
    code, _, err = run_cli("models", "publish", _file(tmp_path, manifest_text()))
    assert code == 1 and "error: publishing a model needs the publisher role; carol has the role user" in err
    monkeypatch.setenv("CARML_USER", "nobody")
    code, _, err = run_cli("models", "remove", "digits-published")
    assert code == 1 and err.startswith("error: CARML_USER=nobody: no user named 'nobody'")
    assert list_published(settings) == []

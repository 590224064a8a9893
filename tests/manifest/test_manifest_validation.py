"""Manifests: committed ones are valid; bad ones are rejected with the file, field path and line."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import MANIFESTS, PROJECT_ROOT

from carml.errors import ManifestError
from carml.manifest import load_model_manifest
from carml.manifest.jsonschema import stale_schemas

ONNX_MODEL = MANIFESTS / "models" / "digits-cnn" / "digits-cnn.onnx"


def _valid_manifest(tmp_path: Path) -> dict[str, Any]:
    model = tmp_path / "model.onnx"
    model.write_bytes(ONNX_MODEL.read_bytes())
    return {
        "name": "my-model",
        "version": "1.0.0",
        "license": "MIT",
        "task": "image-classification",
        "modality": "image",
        "framework": {"name": "onnxruntime", "version": ">=1.16"},
        "inputs": [
            {
                "name": "image",
                "type": "image",
                "shape": [1, 8, 8],
                "preprocessing": [
                    {"op": "decode", "color_mode": "grayscale", "layout": "CHW"},
                    {"op": "resize", "size": [8, 8]},
                ],
            }
        ],
        "outputs": [{"name": "logits", "type": "class-logits", "postprocessing": [{"op": "softmax"}]}],
        "artifacts": [{"url": "model.onnx", "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}],
    }


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "my-model.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_committed_manifests_are_valid(run_cli) -> None:
    code, out, err = run_cli("validate", str(MANIFESTS))
    assert code == 0, err
    assert "0 invalid" in out + err


def test_committed_json_schemas_match_the_code() -> None:
    assert stale_schemas(PROJECT_ROOT / "docs" / "schema") == []


def test_valid_manifest_passes(tmp_path: Path, run_cli) -> None:
    code, out, err = run_cli("validate", str(_write(tmp_path, _valid_manifest(tmp_path))))
    assert code == 0, err


def _set(data: dict[str, Any], path: tuple, value: Any) -> None:
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()

BAD_CASES = [
    # (case, field path in the data, new value, expected field in message, expected words)
    ("wrong type", ("inputs", 0, "shape"), "eight", "inputs[0].shape", "list"),
    ("missing field", ("license",), _DELETE, "license", "required field is missing"),
    ("unknown framework", ("framework", "name"), "caffe9", "framework.name", "unknown framework 'caffe9'"),
    ("unsatisfiable version", ("framework", "version"), ">=99", "framework.version", "not met by the installed"),
    ("bad version syntax", ("framework", "version"), "newest", "framework.version", "not a version constraint"),
    ("wrong checksum", ("artifacts", 0, "sha256"), "ab" * 32, "artifacts[0].sha256", "ab" * 32),
    ("unknown step", ("inputs", 0, "preprocessing", 1, "op"), "blur", "inputs[0].preprocessing[1]", "blur"),
    (
        "bad step field",
        ("inputs", 0, "preprocessing", 1, "size"),
        [0, 8],
        "inputs[0].preprocessing[1].size[0]",
        "greater than 0",
    ),
    ("misspelt field", ("inputs", 0, "elemnt_type"), "float32", "inputs[0].elemnt_type", "unknown field"),
    (
        "remote without sha",
        ("artifacts", 0),
        {"url": "https://example.org/m.onnx"},
        "artifacts[0]",
        "sha256 is required",
    ),
    ("bad scheme", ("artifacts", 0, "url"), "ftp://host/m.onnx", "artifacts[0].url", "unsupported URL scheme"),
    ("wrong suffix", ("artifacts", 0, "url"), "model.pt", "artifacts[0].url", "ending in .onnx"),
    ("bad semver", ("version",), "1.0", "version", "should match pattern"),
    ("step for other type", ("outputs", 0, "postprocessing"), [{"op": "nms"}], "outputs[0]", "does not apply"),
]


@pytest.mark.parametrize("case,path,value,field,words", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_manifest_is_rejected_with_location(tmp_path: Path, run_cli, case, path, value, field, words) -> None:
    data = _valid_manifest(tmp_path)
    _set(data, path, value if value is _DELETE else copy.deepcopy(value))
    manifest_file = _write(tmp_path, data)
    code, out, err = run_cli("validate", str(manifest_file))
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith(str(manifest_file))]
    assert lines, err
    assert any(f": {field}:" in line and words in line for line in lines), err
    # Every located problem carries a line number: "file:LINE: field: message".
    assert all(line[len(str(manifest_file))] == ":" and line.split(":")[1].isdigit() for line in lines), err


def test_loading_a_bad_manifest_anywhere_gives_the_same_message(tmp_path: Path, run_cli) -> None:
    data = _valid_manifest(tmp_path)
    data["inputs"][0]["shape"] = "eight"
    path = _write(tmp_path, data)
    with pytest.raises(ManifestError) as caught:
        load_model_manifest(path)
    code, _, err = run_cli("predict", "--local", str(path), str(tmp_path / "x.png"))
    assert code == 1
    assert str(caught.value) in err
    assert "Traceback" not in err


def test_yaml_syntax_error_names_the_line(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ninputs: [\n  - a\n")
    code, _, err = run_cli("validate", str(path))
    assert code == 1
    assert f"{path}:" in err and "not valid YAML" in err


def test_yaml_tags_cannot_construct_objects(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['touch pwned']\n")
    code, _, err = run_cli("validate", str(path))
    assert code == 1
    assert "not valid YAML" in err
    assert not (tmp_path / "pwned").exists()


def test_validate_without_manifests_fails(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli("validate", str(tmp_path))
    assert code != 0
    assert "no manifest files" in err


def test_duplicate_keys_and_deep_nesting_are_refused(tmp_path: Path, run_cli) -> None:
    duplicated = tmp_path / "dup.yaml"
    duplicated.write_text("name: a\nversion: 1.0.0\nversion: 2.0.0\n")
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: " + "[" * 5000 + "]" * 5000 + "\n")
    code, _, err = run_cli("validate", str(duplicated), str(deep))
    assert code == 1
    assert f"{duplicated}:3: not valid YAML: duplicate key 'version'" in err
    assert f"{deep}: not valid YAML: nested too deeply" in err


def test_a_broken_manifest_in_the_catalog_is_skipped_with_a_warning(tmp_path: Path, run_cli, monkeypatch) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "broken.yaml").write_text("name: [" * 3000 + "\n")
    monkeypatch.setenv("CARML_MANIFEST_DIRS", f"{tmp_path}:{MANIFESTS}")
    code, out, err = run_cli("models")
    assert code == 0 and "digits-cnn" in out
    assert "broken.yaml: not valid YAML" in err and "(skipped)" in err

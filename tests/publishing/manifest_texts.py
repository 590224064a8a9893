"""Model manifests to publish in tests: the committed digits-cnn manifests, renamed and pointed at remote files."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml
from support import MANIFESTS

DIGITS_FOLDER = MANIFESTS / "models" / "digits-cnn"
ONNX_MODEL = DIGITS_FOLDER / "digits-cnn.onnx"
LABELS = DIGITS_FOLDER / "labels.txt"
LABEL_NAMES = [str(digit) for digit in range(10)]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_data(
    name: str = "digits-published",
    base: str = "onnxruntime",
    *,
    model_url: str = "https://models.example.org/digits-cnn.onnx",
    model_sha256: str | None = None,
    labels: dict[str, Any] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """The committed digits-cnn manifest of the framework `base` as data, renamed, with its model file at
    `model_url` and inline labels (unless `labels` gives a labels field); `changes` replace top-level fields."""
    data = yaml.safe_load((MANIFESTS / "models" / f"digits-cnn-{base}.yaml").read_text())
    committed = data["artifacts"][0]
    data["name"] = name
    data["artifacts"] = [{"url": model_url, "sha256": model_sha256 or committed["sha256"]}]
    data["outputs"][0]["labels"] = labels or {"names": LABEL_NAMES}
    data.update(changes)
    return data


def manifest_text(name: str = "digits-published", base: str = "onnxruntime", **options: Any) -> str:
    """`manifest_data` as the YAML text a publisher sends."""
    return yaml.safe_dump(manifest_data(name, base, **options), sort_keys=False)


def s3_manifest_text(s3_client: Any, bucket: str, name: str = "digits-published", **options: Any) -> str:
    """Put the digits-cnn ONNX file and its labels in `bucket` (made here) and return a manifest that names them
    as s3:// artifacts with their sha256: what a worker with no disk shared with the web app can still run."""
    s3_client.make_bucket(bucket)
    s3_client.fput_object(bucket, "digits-cnn/1.0.0/digits-cnn.onnx", str(ONNX_MODEL))
    s3_client.fput_object(bucket, "digits-cnn/1.0.0/labels.txt", str(LABELS))
    labels = {"file": {"url": f"s3://{bucket}/digits-cnn/1.0.0/labels.txt", "sha256": sha256_of(LABELS.read_bytes())}}
    return manifest_text(
        name,
        model_url=f"s3://{bucket}/digits-cnn/1.0.0/digits-cnn.onnx",
        model_sha256=sha256_of(ONNX_MODEL.read_bytes()),
        labels=labels,
        **options,
    )

"""`carml zoo build`: train digits-cnn, export it to three frameworks, check they agree, write manifests.

Everything lands in one folder laid out like the project's `manifests/`:
`models/digits-cnn/` (model files, labels.txt), `models/digits-cnn-<framework>.yaml`, and
`datasets/` (digits.yaml, digits-png.yaml, digits-png.zip).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from carml.artifacts.hashing import file_sha256
from carml.datasets.digits import LABELS, load_digits_split
from carml.errors import CarmlError
from carml.zoo import digits_cnn, digits_png
from carml.zoo.manifests import FLAVOURS, digits_manifest, digits_png_manifest, model_manifest
from carml.zoo.zipfiles import write_atomic

MODEL_NAME = "digits-cnn"
MIN_TOP1 = 0.97
# float32 kernels of different frameworks sum in different orders; anything above this is a real mismatch.
LOGITS_ATOL = 1e-4


def default_out_dir() -> Path:
    """The committed location: the project's manifests/ folder."""
    return Path(__file__).resolve().parents[2] / "manifests"


@dataclass(frozen=True)
class FrameworkResult:
    """One exported model: its file, manifest and test-split accuracy."""

    framework: str
    artifact: Path
    manifest: Path
    sha256: str
    top1: float


@dataclass(frozen=True)
class ZooReport:
    """What a build wrote and measured; `files` maps every file written to its sha256."""

    out_dir: Path
    train_seconds: float
    weights_sha256: str
    max_logit_difference: float
    models: tuple[FrameworkResult, ...]
    files: dict[Path, str]
    weights: digits_cnn.Weights = field(repr=False)

    @property
    def top1(self) -> dict[str, float]:
        return {m.framework: m.top1 for m in self.models}

    def __str__(self) -> str:
        lines = [
            f"digits-cnn trained in {self.train_seconds:.1f} s; weights sha256 {self.weights_sha256}",
            f"frameworks agree: max |logit difference| {self.max_logit_difference:.2e} on the test split",
        ]
        lines += [f"  {m.framework:<12} top-1 {m.top1:.4f}  {m.artifact}" for m in self.models]
        lines += ["wrote:"] + [f"  {sha}  {path}" for path, sha in self.files.items()]
        return "\n".join(lines)


def _url(target: Path, manifest_folder: Path) -> str:
    return Path(os.path.relpath(target, manifest_folder)).as_posix()


def _check_agreement(logits: dict[str, np.ndarray]) -> float:
    reference = next(iter(logits.values()))
    worst = max(float(np.max(np.abs(values - reference))) for values in logits.values())
    if worst > LOGITS_ATOL:
        raise CarmlError(f"the exported models disagree: logits differ by up to {worst:.3g} (> {LOGITS_ATOL})")
    return worst


Exporter = Callable[[digits_cnn.Weights, Path], None]
Runner = Callable[[Path, np.ndarray], np.ndarray]
_EXPORTERS: dict[str, tuple[Exporter, Runner]] = {
    "onnxruntime": (digits_cnn.export_onnx, digits_cnn.onnx_logits),
    "pytorch": (digits_cnn.export_torchscript, digits_cnn.torchscript_logits),
    "tensorflow": (digits_cnn.export_keras, digits_cnn.keras_logits),
}


def _export_and_check(
    weights: digits_cnn.Weights, model_dir: Path, images: np.ndarray, labels: np.ndarray
) -> tuple[dict[str, float], float]:
    """Export to every framework and score each file on the test split; move the files in only if all pass.

    Judging the files as written (not the in-memory models) checks what gets published; staging them
    keeps a failed build from leaving new models next to manifests with the old checksums.
    Returns (top-1 per framework, the largest logit difference between frameworks).
    """
    x_nchw = digits_cnn.model_input(images)
    model_dir.mkdir(parents=True, exist_ok=True)
    logits: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=model_dir) as staging:
        for flavour in FLAVOURS:
            export, run = _EXPORTERS[flavour.framework]
            export(weights, Path(staging) / flavour.artifact)
            x = x_nchw.transpose(0, 2, 3, 1) if flavour.layout == "HWC" else x_nchw
            logits[flavour.framework] = run(Path(staging) / flavour.artifact, np.ascontiguousarray(x))
        worst = _check_agreement(logits)
        top1 = {name: float(np.mean(values.argmax(axis=1) == labels)) for name, values in logits.items()}
        for framework, accuracy in top1.items():
            if accuracy < MIN_TOP1:
                raise CarmlError(f"digits-cnn on {framework} reaches top-1 {accuracy:.4f}, below {MIN_TOP1}")
        for flavour in FLAVOURS:
            os.replace(Path(staging) / flavour.artifact, model_dir / flavour.artifact)
    return top1, worst


def build_zoo(out_dir: Path | None = None) -> ZooReport:
    """Build digits-cnn and the digits datasets into `out_dir` (default: the project's manifests/)."""
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    models_dir, datasets_dir = out / "models", out / "datasets"
    model_dir = models_dir / MODEL_NAME
    files: dict[Path, str] = {}

    def record(path: Path) -> str:
        files[path] = file_sha256(path)
        return files[path]

    trained = digits_cnn.train_digits_cnn()
    test_images, test_labels = load_digits_split("test")
    top1, worst = _export_and_check(trained.weights, model_dir, test_images, test_labels)

    labels_path = model_dir / "labels.txt"
    write_atomic(labels_path, "".join(f"{label}\n" for label in LABELS).encode())
    record(labels_path)
    results = []
    for flavour in FLAVOURS:
        artifact = model_dir / flavour.artifact
        manifest = models_dir / f"{MODEL_NAME}-{flavour.framework}.yaml"
        sha256, accuracy = record(artifact), top1[flavour.framework]
        artifact_url, labels_url = _url(artifact, models_dir), _url(labels_path, models_dir)
        text = model_manifest(flavour, artifact_url, labels_url, sha256, accuracy, trained.train_size)
        write_atomic(manifest, text.encode())
        record(manifest)
        results.append(FrameworkResult(flavour.framework, artifact, manifest, sha256, accuracy))

    zip_path = datasets_dir / f"{digits_png.ROOT}.zip"
    digits_png.write_digits_png_zip(zip_path, test_images, test_labels)
    zip_sha = record(zip_path)
    dataset_texts = {
        "digits.yaml": digits_manifest(len(test_images)),
        "digits-png.yaml": digits_png_manifest(
            _url(zip_path, datasets_dir), zip_sha, digits_png.ROOT, len(test_images), digits_png.SCALE
        ),
    }
    for name, text in dataset_texts.items():
        write_atomic(datasets_dir / name, text.encode())
        record(datasets_dir / name)
    _validate_manifests(results, [datasets_dir / name for name in dataset_texts])
    return ZooReport(out, trained.seconds, trained.digest, worst, tuple(results), files, trained.weights)


def _validate_manifests(models: list[FrameworkResult], datasets: list[Path]) -> None:
    """Load what was written through the normal loaders, so a template slip fails the build, not a user."""
    from carml.manifest import load_dataset_manifest, load_model_manifest

    for result in models:
        load_model_manifest(result.manifest)
    for path in datasets:
        load_dataset_manifest(path)

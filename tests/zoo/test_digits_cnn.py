"""`carml zoo build` reproduces the committed digits-cnn models and digits-png archive from scratch."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from support import MANIFESTS

from carml.artifacts.hashing import file_sha256
from carml.datasets.digits import load_digits_split
from carml.manifest import load_dataset_manifest, load_model_manifest
from carml.zoo import digits_cnn
from carml.zoo.build import ZooReport, build_zoo

COMMITTED_MODEL = MANIFESTS / "models" / "digits-cnn"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> ZooReport:
    for module in ("torch", "onnx", "onnxruntime", "keras"):
        pytest.importorskip(module)
    return build_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.mark.slow
def test_the_three_exports_agree_and_classify_well(report: ZooReport) -> None:
    images, labels = load_digits_split("test")
    x = digits_cnn.model_input(images)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    artifacts = {m.framework: m.artifact for m in report.models}
    logits = {
        "pytorch": digits_cnn.torchscript_logits(artifacts["pytorch"], x),
        "onnxruntime": digits_cnn.onnx_logits(artifacts["onnxruntime"], x),
        "tensorflow": digits_cnn.keras_logits(artifacts["tensorflow"], x_nhwc),
    }
    for framework, values in logits.items():
        assert values.shape == (len(images), 10), framework
        np.testing.assert_allclose(values, logits["pytorch"], rtol=0, atol=1e-4, err_msg=framework)
        assert np.mean(values.argmax(axis=1) == labels) >= 0.95, framework
    assert all(top1 >= 0.95 for top1 in report.top1.values())


@pytest.mark.slow
def test_training_reproduces_the_committed_weights_bit_for_bit(report: ZooReport) -> None:
    import onnx
    from onnx import numpy_helper

    committed = onnx.load(str(COMMITTED_MODEL / "digits-cnn.onnx"))
    initializers = {t.name: numpy_helper.to_array(t) for t in committed.graph.initializer}
    assert sorted(initializers) == sorted(report.weights)
    for name, trained in report.weights.items():
        assert initializers[name].dtype == trained.dtype == np.float32, name
        np.testing.assert_array_equal(trained, initializers[name], err_msg=name)
    assert digits_cnn.weights_digest(initializers) == report.weights_sha256


@pytest.mark.slow
def test_the_png_archive_is_byte_identical_to_the_committed_one(report: ZooReport) -> None:
    if "ng" in zlib.ZLIB_RUNTIME_VERSION.lower():
        pytest.skip(f"zlib-ng ({zlib.ZLIB_RUNTIME_VERSION}) deflates the PNGs to other, equally valid bytes")
    built = report.out_dir / "datasets" / "digits-png.zip"
    committed = MANIFESTS / "datasets" / "digits-png.zip"
    assert file_sha256(built) == file_sha256(committed)
    location = load_dataset_manifest(MANIFESTS / "datasets" / "digits-png.yaml").manifest.location
    assert location is not None and location.sha256 == file_sha256(committed)


def test_committed_manifests_match_their_files() -> None:
    """Fast guard: a model file replaced without rerunning the builder fails here, not at checksum time."""
    for framework in ("onnxruntime", "pytorch", "tensorflow"):
        loaded = load_model_manifest(MANIFESTS / "models" / f"digits-cnn-{framework}.yaml")
        artifact = loaded.manifest.primary_artifact
        path: Path = loaded.folder / artifact.url
        assert artifact.sha256 == file_sha256(path), framework
        assert loaded.manifest.attributes.top1 is not None and loaded.manifest.attributes.top1 >= 0.97

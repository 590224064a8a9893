"""Predictors are plugins: a third-party package is found through its entry point, and a missing
framework disables only its own predictor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from support import MANIFESTS, PROJECT_ROOT, run_carml_process

PLUGIN = PROJECT_ROOT / "tests" / "plugins" / "carml-linear-predictor"

# Makes `import tensorflow` fail in a child interpreter, as if the package were uninstalled.
BLOCK_TENSORFLOW = """
import sys

class _Uninstalled:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Uninstalled())
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test plugin installed (with its entry point metadata) into a private folder."""
    site = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(PLUGIN),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


def _linear_digits_manifest(folder: Path) -> Path:
    """Fit a real linear classifier on the digits train split and publish it by manifest alone."""
    from sklearn.linear_model import LogisticRegression

    from carml.datasets.digits import load_digits_split

    images, labels = load_digits_split("train")
    classifier = LogisticRegression(max_iter=2000).fit(images.reshape(len(images), -1) / 255.0, labels)
    models = folder / "models"
    models.mkdir(parents=True)
    np.savez(
        models / "linear-digits.npz",
        weights=classifier.coef_.T.astype(np.float32),
        bias=classifier.intercept_.astype(np.float32),
    )
    manifest = {
        "name": "linear-digits",
        "version": "0.1.0",
        "license": "MIT",
        "task": "image-classification",
        "modality": "image",
        "framework": {"name": "numpy-linear"},
        "inputs": [
            {
                "name": "pixels",
                "type": "image",
                "shape": [8, 8, 1],
                "preprocessing": [{"op": "decode", "color_mode": "grayscale"}, {"op": "normalize", "scale": 1 / 255}],
            }
        ],
        "outputs": [
            {
                "name": "logits",
                "type": "class-logits",
                "labels": {"names": [str(d) for d in range(10)]},
                "postprocessing": [{"op": "softmax"}],
            }
        ],
        "artifacts": [{"url": "linear-digits.npz"}],
    }
    path = models / "linear-digits-numpy.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_third_party_predictor_is_discovered_and_runs(plugin_site: Path, tmp_path: Path) -> None:
    _linear_digits_manifest(tmp_path / "extra")
    env = {
        "PYTHONPATH": str(plugin_site),
        "CARML_CACHE_DIR": str(tmp_path / "cache"),
        "CARML_MANIFEST_DIRS": f"{tmp_path / 'extra'}:{MANIFESTS}",
    }
    frameworks = run_carml_process("frameworks", "--json", env=env)
    assert frameworks.returncode == 0, frameworks.stderr
    by_name = {row["framework"]: row for row in json.loads(frameworks.stdout)}
    assert by_name["numpy-linear"]["available"] is True
    assert by_name["numpy-linear"]["plugin"] == "carml_linear_predictor:LinearPredictor"

    result = run_carml_process("evaluate", "--local", "linear-digits", "--dataset", "digits", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["top1"] > 0.9


def test_without_the_plugin_its_framework_is_unknown(tmp_path: Path) -> None:
    manifest = _linear_digits_manifest(tmp_path / "extra")
    result = run_carml_process("validate", str(manifest), env={"CARML_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 1
    assert "framework.name: unknown framework 'numpy-linear'" in result.stderr


def test_missing_tensorflow_leaves_the_other_frameworks_working(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCK_TENSORFLOW)
    env = {"PYTHONPATH": str(blocker), "CARML_CACHE_DIR": str(tmp_path / "cache")}

    frameworks = json.loads(run_carml_process("frameworks", "--json", env=env).stdout)
    by_name = {row["framework"]: row for row in frameworks}
    assert by_name["tensorflow"]["available"] is False
    assert "pip install 'carml[tensorflow]'" in by_name["tensorflow"]["reason"]
    assert by_name["onnxruntime"]["available"] and by_name["pytorch"]["available"]

    for framework in ("onnxruntime", "pytorch"):
        ok = run_carml_process(
            "evaluate",
            "--local",
            "digits-cnn",
            "-f",
            framework,
            "--dataset",
            "digits",
            "--limit",
            "64",
            "--json",
            env=env,
        )
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["top1"] > 0.9

    refused = run_carml_process("evaluate", "--local", "digits-cnn", "-f", "tensorflow", "--dataset", "digits", env=env)
    assert refused.returncode == 1
    assert "tensorflow is not installed" in refused.stderr and "Traceback" not in refused.stderr

    models = json.loads(run_carml_process("models", "--json", env=env).stdout)
    runnable = {(m["name"], m["framework"]): m["runnable"] for m in models}
    assert runnable[("digits-cnn", "tensorflow")] is False
    assert runnable[("digits-cnn", "onnxruntime")] is True

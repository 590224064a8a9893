"""Manifests and artifacts as an attacker would write them: YAML that builds objects or explodes, local artifacts
that lead out of the manifest's folder, and a PyTorch file that would run code if it were unpickled."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from support import MANIFESTS

from carml.artifacts import ArtifactCache
from carml.errors import ArtifactError, CarmlError
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import EvaluationRequest, get_job, submit_evaluation
from carml.labels import read_labels
from carml.manifest.common import ArtifactRef, Labels
from carml.settings import Settings

MARKER = "constructed"  # a folder a manifest's YAML would create if its tags built Python objects


def _billion_laughs() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return "\n".join([*lines, "name: laughs", "description: *a9"])


YAML_CASES = {
    "python-object-apply": ("name: !!python/object/apply:os.mkdir ['{marker}']", "could not determine a constructor"),
    "python-name": ("name: !!python/name:os.system", "could not determine a constructor"),
    "python-module": ("name: !!python/module:os", "could not determine a constructor"),
    "billion-laughs": (_billion_laughs(), "aliases expand it past 100000 nodes"),
    "nested-too-deeply": ("name: " + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "duplicate-key": ("name: a\nname: b", "duplicate key 'name'"),
    "nul-character": ("name: a\x00b", "unacceptable character #x0000"),
    "over-one-mib": ("description: '" + "x" * (1024 * 1024) + "'", "manifests are at most 1 MiB"),
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_hostile_yaml_is_refused_by_validate(run_cli, tmp_path: Path, case: str) -> None:
    text, says = YAML_CASES[case]
    path = tmp_path / "models" / "hostile.yaml"
    path.parent.mkdir()
    path.write_text(text.replace("{marker}", str(tmp_path / MARKER)))

    code, out, err = run_cli("validate", str(path))

    assert code != 0
    problems = [line for line in (out + err).splitlines() if line.startswith(str(path))]
    assert len(problems) == 1 and says in problems[0], out + err
    assert not (tmp_path / MARKER).exists()


# --- local artifacts stay inside the manifest's folder when the service resolves them --------------------------


@pytest.fixture()
def manifest_folder(tmp_path: Path) -> Path:
    """A manifest folder with a labels file, beside an outside folder holding a secret."""
    folder = tmp_path / "manifests" / "models"
    (folder / "inside").mkdir(parents=True)
    (folder / "inside" / "labels.txt").write_text("cat\ndog\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("root:x:0:0\n")
    return folder


@pytest.fixture()
def local_settings(tmp_path: Path) -> Settings:
    """Settings for resolving artifacts only: a private cache, no database."""
    return Settings(cache_dir=tmp_path / "cache")


def _service_cache(settings: Settings) -> ArtifactCache:
    return ArtifactCache(settings, confine_local_files=True)


@pytest.mark.parametrize(
    "url",
    [
        "../../outside/secret.txt",
        "inside/../../../outside/secret.txt",
        "{root}/outside/secret.txt",
        "file://{root}/outside/secret.txt",
        "/etc/hostname",
        "inside/link-out.txt",
        "link-to-outside-folder/secret.txt",
    ],
)
def test_the_service_refuses_local_artifacts_outside_the_manifest_folder(
    local_settings: Settings, manifest_folder: Path, tmp_path: Path, url: str
) -> None:
    (manifest_folder / "inside" / "link-out.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (manifest_folder / "link-to-outside-folder").symlink_to(tmp_path / "outside")
    if url == "/etc/hostname" and not Path(url).exists():
        pytest.skip("no /etc/hostname here")
    ref = ArtifactRef(url=url.replace("{root}", str(tmp_path)))

    with pytest.raises(ArtifactError, match="leads outside the manifest's folder"):
        _service_cache(local_settings).resolve(ref, manifest_folder)
    with pytest.raises(CarmlError, match="leads outside the manifest's folder"):
        read_labels(Labels(file=ref), manifest_folder, _service_cache(local_settings).resolve)


def test_the_service_reads_local_artifacts_inside_the_folder_and_the_cli_reads_anywhere(
    local_settings: Settings, manifest_folder: Path, tmp_path: Path
) -> None:
    (manifest_folder / "inside" / "alias.txt").symlink_to(manifest_folder / "inside" / "labels.txt")
    for url in ("inside/labels.txt", "inside/alias.txt", str(manifest_folder / "inside" / "labels.txt")):
        resolve = _service_cache(local_settings).resolve
        labels = read_labels(Labels(file=ArtifactRef(url=url)), manifest_folder, resolve)
        assert labels == ["cat", "dog"]
    # The local CLI runs with its user's own permissions, on that user's manifests: it reads where they point.
    outside = ArtifactRef(url="../../outside/secret.txt")
    assert ArtifactCache(local_settings).resolve(outside, manifest_folder).read_text() == "root:x:0:0\n"


def test_the_service_reads_anywhere_inside_the_configured_manifest_folder(
    manifest_folder: Path, tmp_path: Path
) -> None:
    """A dataset manifest may point at `../data/...` beside its folder, inside the CARML_MANIFEST_DIRS entry."""
    (tmp_path / "manifests" / "data").mkdir()
    (tmp_path / "manifests" / "data" / "labels.txt").write_text("red\n")
    settings = Settings(cache_dir=tmp_path / "cache", manifest_dirs=(tmp_path / "manifests",))
    resolve = _service_cache(settings).resolve
    assert read_labels(Labels(file=ArtifactRef(url="../data/labels.txt")), manifest_folder, resolve) == ["red"]
    with pytest.raises(ArtifactError, match="leads outside the manifest's folder"):
        resolve(ArtifactRef(url="../../outside/secret.txt"), manifest_folder)


def test_a_worker_fails_a_job_whose_manifest_points_outside_its_folder(settings: Settings, tmp_path: Path) -> None:
    """End to end: a catalog manifest whose labels file is a symlink to a file elsewhere fails on the worker."""
    catalog = tmp_path / "catalog"
    shutil.copytree(MANIFESTS / "models" / "digits-cnn", catalog / "models" / "digits-cnn")
    shutil.copy(MANIFESTS / "models" / "digits-cnn-onnxruntime.yaml", catalog / "models")
    shutil.copytree(MANIFESTS / "datasets", catalog / "datasets")
    (tmp_path / "elsewhere.txt").write_text("\n".join(str(d) for d in range(10)) + "\n")
    labels = catalog / "models" / "digits-cnn" / "labels.txt"
    labels.unlink()
    labels.symlink_to(tmp_path / "elsewhere.txt")
    service = replace(settings, manifest_dirs=(catalog,))
    request = EvaluationRequest("digits-cnn", "digits", "onnxruntime", "cpu", limit=8)
    job_id = submit_evaluation(service, request, lambda *_: None)

    assert run_shard(service, job_id, 0, "cpu-test@host", ModelCache()) == "failed"

    job = get_job(service, job_id)
    assert "digits-cnn/labels.txt leads outside the manifest's folder" in (job.error or "")
    assert job.result is None


@pytest.mark.slow  # importing torch takes seconds
def test_a_pickled_pytorch_file_is_refused_without_running_its_code(local_settings: Settings, tmp_path: Path) -> None:
    """torch.save files are pickles; the PyTorch predictor loads TorchScript only, never unpickling them."""
    torch = pytest.importorskip("torch")
    from carml.catalog import Catalog
    from carml.runs import open_predictor

    marker = tmp_path / MARKER

    class RunsCodeWhenUnpickled:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.mkdir, (str(marker),))

    catalog = tmp_path / "catalog"
    shutil.copytree(MANIFESTS / "models" / "digits-cnn", catalog / "models" / "digits-cnn")
    shutil.copy(MANIFESTS / "models" / "digits-cnn-pytorch.yaml", catalog / "models")
    model = catalog / "models" / "digits-cnn" / "digits-cnn.pt"
    torch.save({"weights": RunsCodeWhenUnpickled()}, model)
    manifest = (catalog / "models" / "digits-cnn-pytorch.yaml").read_text()
    (catalog / "models" / "digits-cnn-pytorch.yaml").write_text(manifest.replace("sha256:", "# sha256:"))
    loaded = Catalog.load((catalog,)).model("digits-cnn", "pytorch")

    with pytest.raises(CarmlError, match="torch cannot load"):
        open_predictor(loaded, _service_cache(local_settings), "cpu")
    assert not marker.exists()

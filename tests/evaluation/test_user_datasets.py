"""Users' own datasets (class folders, zip, CSV, NPZ); bad items are counted, runs can be cancelled."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from carml.datasets.digits import load_digits_split
from carml.errors import CarmlError
from carml.evaluation.runner import EvaluationOptions
from carml.runs import evaluate_model
from carml.settings import load_settings

COUNT = 60


@pytest.fixture()
def settings(tmp_path: Path):
    return load_settings({"CARML_CACHE_DIR": str(tmp_path / "cache")})


@pytest.fixture()
def digit_folder(tmp_path: Path) -> Path:
    """The first test digits as 8x8 PNG files in class folders."""
    images, labels = load_digits_split("test")
    root = tmp_path / "my-digits"
    for i in range(COUNT):
        folder = root / str(labels[i])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(folder / f"{i}.png")
    return root


def _evaluate(settings, dataset: Path | str, **options) -> dict:
    return evaluate_model(
        settings, "digits-cnn", str(dataset), framework="onnxruntime", options=EvaluationOptions(**options)
    )


def test_class_folder_with_bad_items_counts_them_and_goes_on(settings, digit_folder: Path) -> None:
    (digit_folder / "3" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (digit_folder / "3" / "notes.txt").write_text("not an image")
    result = _evaluate(settings, digit_folder, batch_size=16)
    assert result["items"] == COUNT
    assert result["errors"] == 2
    reasons = {e["item"]: e["reason"] for e in result["error_items"]}
    assert "cannot decode image" in reasons["3/truncated.png"]
    assert "not an image file" in reasons["3/notes.txt"]
    assert result["top1"] >= 0.9


def test_zipped_class_folders(settings, digit_folder: Path, tmp_path: Path) -> None:
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(digit_folder.rglob("*.png")):
            zf.write(path, path.relative_to(digit_folder).as_posix())
    assert _evaluate(settings, archive)["items"] == COUNT


def test_csv_with_file_paths(settings, digit_folder: Path) -> None:
    table = digit_folder / "index.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        for path in sorted(digit_folder.rglob("*.png")):
            writer.writerow([path.relative_to(digit_folder).as_posix(), path.parent.name])
        writer.writerow(["../outside.png", "1"])
    result = _evaluate(settings, table)
    assert result["items"] == COUNT
    assert [e["reason"] for e in result["error_items"]] == ["path '../outside.png' leaves the dataset folder"]


def test_npz_arrays(settings, tmp_path: Path) -> None:
    images, labels = load_digits_split("test")
    path = tmp_path / "digits.npz"
    np.savez(path, x=images[:COUNT], y=labels[:COUNT])
    result = _evaluate(settings, path)
    assert result["items"] == COUNT and result["top1"] >= 0.9


def test_limit_and_cancellation(settings) -> None:
    assert _evaluate(settings, "digits", limit=50)["items"] == 50
    batches_seen = []
    result = evaluate_model(
        settings,
        "digits-cnn",
        "digits",
        framework="onnxruntime",
        options=EvaluationOptions(batch_size=10),
        progress=lambda done, total: batches_seen.append(done),
        should_stop=lambda: len(batches_seen) >= 3,
    )
    assert result["cancelled"] is True and result["items"] == 30


def test_dataset_whose_items_all_fail_is_an_error(settings, tmp_path: Path) -> None:
    folder = tmp_path / "broken" / "1"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(b"nope")
    with pytest.raises(CarmlError, match="no item of user-dataset could be evaluated"):
        _evaluate(settings, tmp_path / "broken")


def test_classes_unknown_to_the_model_are_refused(settings, tmp_path: Path) -> None:
    folder = tmp_path / "letters" / "A"
    folder.mkdir(parents=True)
    Image.new("L", (8, 8)).save(folder / "a.png")
    with pytest.raises(CarmlError, match=r"dataset classes \['A'\] are not classes of the model"):
        _evaluate(settings, tmp_path / "letters")


def test_dataset_manifest_with_a_labels_file(settings, digit_folder: Path, run_cli) -> None:
    (digit_folder.parent / "classes.txt").write_text("\n".join(str(d) for d in range(10)) + "\n")
    manifest = digit_folder.parent / "my-digits.yaml"
    manifest.write_text(
        "kind: dataset\nname: my-digits\nmodality: image\nformat: image-folder\n"
        "location: {url: my-digits}\nlabels: {file: {url: classes.txt}}\n"
    )
    code, _, err = run_cli("validate", str(manifest))
    assert code == 0, err
    assert _evaluate(settings, manifest)["items"] == COUNT
    # The file is what defines the classes: one the model lacks is refused by name.
    (digit_folder.parent / "classes.txt").write_text("\n".join([*(str(d) for d in range(10)), "ten"]))
    with pytest.raises(CarmlError, match=r"dataset classes \['ten'\] are not classes of the model"):
        _evaluate(settings, manifest)

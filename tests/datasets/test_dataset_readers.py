"""Dataset readers on bad user data: whole-file problems are DatasetErrors naming the file, bad rows are refused."""

from __future__ import annotations

import csv
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import MANIFESTS

from carml.artifacts import ArtifactCache
from carml.datasets import OpenedDataset, looks_like_dataset_path, manifest_for_path, open_dataset
from carml.datasets.base import natural_key
from carml.datasets.image_folder import read_image_folder
from carml.datasets.tabular import MAX_NPZ_CLASSES, read_csv, read_npz
from carml.errors import DatasetError
from carml.manifest import DatasetManifest
from carml.runs import evaluate_model
from carml.settings import Settings, load_settings


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return load_settings({"CARML_CACHE_DIR": str(tmp_path / "cache")})


def _open(path: Path, settings: Settings) -> OpenedDataset:
    """Open a user's path the way `carml evaluate --dataset PATH` does."""
    return open_dataset(manifest_for_path(path), ArtifactCache(settings).resolve)


def _manifest(fmt: str, **fields: object) -> DatasetManifest:
    return DatasetManifest.model_validate(
        {"name": "test-data", "modality": "tensor", "format": fmt, "location": {"url": "unused"}, **fields}
    )


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _image_tree(root: Path, classes: list[str], per_class: int = 1) -> Path:
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("L", (8, 8)).save(root / name / f"{i}.png")
    return root


# --- manifest_for_path: names that look like URLs, archive suffixes, catalog names ----------------------------


@pytest.mark.parametrize("name", ["run:3.csv", "c:dir"])
def test_a_colon_in_the_name_is_not_a_url_scheme(tmp_path: Path, settings: Settings, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".csv"):
        _write_csv(path, [["x", "label"], ["1.5", "0"]])
    else:
        _image_tree(path, ["0", "1"])
    opened = _open(path, settings)
    assert len(opened.items) in (1, 2) and not opened.rejected


@pytest.mark.parametrize("archive", ["tar.bz2", "tar.xz"])
def test_bz2_and_xz_tarballs_are_image_folders(tmp_path: Path, settings: Settings, archive: str) -> None:
    tree = _image_tree(tmp_path / "tree", ["cat", "dog"])
    path = tmp_path / f"pets.{archive}"
    with tarfile.open(path, f"w:{archive.split('.')[1]}") as tar:
        tar.add(tree, arcname=".")
    loaded = manifest_for_path(path)
    assert loaded.manifest.location is not None and loaded.manifest.location.archive == archive
    assert _open(path, settings).labels == ["cat", "dog"]


def test_a_file_of_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.gz"
    path.write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"data\.gz: expected a folder of class subfolders"):
        manifest_for_path(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("digits", False),
        ("digits-png", False),
        ("my/digits", True),
        ("upload.zip", True),
        ("upload.TAR.GZ", True),
        ("upload.tgz", True),
        ("upload.tar.bz2", True),
        ("upload.tar.xz", True),
        ("table.csv", True),
        ("arrays.npz", True),
        ("notes.gz", False),
    ],
)
def test_looks_like_dataset_path(name: str, expected: bool) -> None:
    assert looks_like_dataset_path(name) is expected


# --- CSV ---------------------------------------------------------------------------------------------------------


def test_csv_that_is_not_utf8_is_a_dataset_error(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("x,label\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"latin1\.csv is not UTF-8 text"):
        read_csv(_manifest("csv"), path)
    # A non-UTF-8 header fails while guessing the options of a user's CSV, with the same message.
    path.write_bytes("caf\xe9,label\n1,0\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"latin1\.csv is not UTF-8 text"):
        _open(path, settings)


def test_csv_field_over_the_size_limit_is_a_dataset_error(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("x,label\n" + "1" * (csv.field_size_limit() + 1) + ",0\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"huge\.csv: line 2: not readable as CSV: field larger than field limit"):
        read_csv(_manifest("csv"), path)
    path.write_text('"' + "h" * (csv.field_size_limit() + 1) + '",label\n1,0\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"huge\.csv: line 1: not readable as CSV"):
        manifest_for_path(path)


def test_csv_ragged_and_non_numeric_rows_are_refused(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "rows.csv",
        [["a", "b", "label"], ["1", "2", "0"], ["3", "1"], ["1", "2", "1", "extra"], ["4", "oops", "1"], []],
    )
    opened = read_csv(_manifest("csv"), path)
    assert [item.item_id for item in opened.items] == ["row-2"]
    assert opened.rejected == [
        ("row-3", "row has 2 fields, the header has 3"),
        ("row-4", "row has 4 fields, the header has 3"),
        ("row-5", "column 'b': 'oops' is not a number"),
    ]
    assert opened.labels == ["0", "1"]


@pytest.mark.parametrize(("content", "message"), [("", "is empty"), ("x,label\n", "has a header but no rows")])
def test_empty_and_header_only_csv_are_dataset_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "table.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"table\.csv.*{message}"):
        read_csv(_manifest("csv"), path)


def test_csv_with_a_byte_order_mark_and_spaced_header(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffx, label\n1,0\n2,1\n".encode())
    opened = _open(path, settings)
    assert len(opened.items) == 2 and not opened.rejected


def test_bad_csv_through_the_cli_is_one_line_error(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "ragged.csv"
    path.write_bytes(b"x,label\n\x00\xff,1\n")
    code, _, err = run_cli("evaluate", "--local", "digits-cnn", "--framework", "onnxruntime", "--dataset", str(path))
    assert code == 1
    assert err.startswith("error: ") and "ragged.csv is not UTF-8 text" in err
    assert "Traceback" not in err


# --- NPZ ---------------------------------------------------------------------------------------------------------


def test_npz_with_a_scalar_x_is_a_dataset_error(tmp_path: Path) -> None:
    path = tmp_path / "scalar.npz"
    np.savez(path, x=np.float32(1.0), y=np.array([0]))
    with pytest.raises(DatasetError, match=r"scalar\.npz: x must be a numeric array with items along its first"):
        read_npz(_manifest("npz"), path)


def test_npz_with_a_huge_class_index_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "values.npz"
    np.savez(path, x=np.zeros((2, 3)), y=np.array([1, 10**12]))
    with pytest.raises(DatasetError, match=rf"values\.npz: y holds class {10**12}, more than {MAX_NPZ_CLASSES}"):
        read_npz(_manifest("npz"), path)


def test_npz_negative_class_is_refused_per_item(tmp_path: Path) -> None:
    path = tmp_path / "neg.npz"
    np.savez(path, x=np.zeros((3, 2)), y=np.array([0, -1, 1]))
    opened = read_npz(_manifest("npz"), path)
    assert opened.labels == ["0", "1"] and len(opened.items) == 2
    assert opened.rejected == [("1", "class -1 is outside 0..1")]
    np.savez(path, x=np.zeros((1, 2)), y=np.array([-1]))
    with pytest.raises(DatasetError, match="y has no class index of 0 or more"):
        read_npz(_manifest("npz"), path)


def test_a_file_that_is_not_a_zip_is_not_an_npz(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "plain.npz"
    np.save(path.with_suffix(".npy"), np.zeros(3))
    path.with_suffix(".npy").rename(path)
    with pytest.raises(DatasetError, match=r"plain\.npz is not an NPZ \(zip\) file"):
        read_npz(_manifest("npz"), path)
    code, _, err = run_cli("evaluate", "--local", "digits-cnn", "-f", "onnxruntime", "-d", str(path))
    assert code == 1 and "is not an NPZ (zip) file" in err and len(err.strip().splitlines()) == 1


def test_npz_missing_array_names_the_arrays_it_has(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, images=np.zeros((2, 2)), y=np.array([0, 1]))
    with pytest.raises(DatasetError, match=r"other\.npz has no array \['x'\] \(has \['images', 'y'\]\)"):
        read_npz(_manifest("npz"), path)


# --- image folders: natural class order, wrapper folders, the listing digest -------------------------------------


def test_natural_key_orders_numbers_by_value() -> None:
    names = ["10", "b", "2", "A", "0", "a10", "1"]
    assert sorted(names, key=natural_key) == ["0", "1", "2", "10", "A", "a10", "b"]


def test_class_folders_and_csv_labels_share_one_natural_order(tmp_path: Path) -> None:
    classes = [str(i) for i in range(11)]
    tree = _image_tree(tmp_path / "tree", classes)
    opened = read_image_folder(_manifest("image-folder"), tree)
    assert opened.labels == classes
    assert {item.item_id: item.label for item in opened.items} == {f"{c}/0.png": int(c) for c in classes}
    table = _write_csv(tmp_path / "t.csv", [["x", "label"], *([str(i), c] for i, c in enumerate(reversed(classes)))])
    assert read_csv(_manifest("csv"), table).labels == classes


def test_a_single_wrapper_folder_is_looked_through(tmp_path: Path, settings: Settings) -> None:
    tree = _image_tree(tmp_path / "export" / "digits", ["0", "1", "2"], per_class=2)
    (tree / "README.txt").write_text("not an image; does not make `digits` a class")
    (tmp_path / "export" / ".DS_Store").write_bytes(b"")
    opened = read_image_folder(_manifest("image-folder"), tmp_path / "export")
    assert opened.labels == ["0", "1", "2"] and len(opened.items) == 6
    assert opened.items[0].item_id == "0/0.png"
    # A zip made by zipping the folder, with the macOS leftovers such zips often carry.
    archive = tmp_path / "digits.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(tree.rglob("*.png")):
            zf.write(path, f"digits/{path.relative_to(tree).as_posix()}")
        zf.writestr("__MACOSX/digits/._0", b"")
    assert _open(archive, settings).labels == ["0", "1", "2"]


def test_a_single_class_folder_of_images_is_not_a_wrapper(tmp_path: Path) -> None:
    tree = _image_tree(tmp_path / "tree", ["cat"])
    opened = read_image_folder(_manifest("image-folder"), tree)
    assert opened.labels == ["cat"] and len(opened.items) == 1


@pytest.mark.slow
def test_committed_digits_png_zip_as_a_user_path(settings: Settings) -> None:
    zip_path = MANIFESTS / "datasets" / "digits-png.zip"
    result = evaluate_model(settings, "digits-cnn", str(zip_path), framework="onnxruntime")
    assert result["items"] == 360 and result["errors"] == 0


def test_listing_digest_covers_names_and_sizes(tmp_path: Path) -> None:
    tree = _image_tree(tmp_path / "tree", ["0", "1"])
    first = read_image_folder(_manifest("image-folder"), tree).digest
    assert first.startswith("listing:")
    Image.new("L", (16, 16)).save(tree / "1" / "0.png")  # another size
    assert read_image_folder(_manifest("image-folder"), tree).digest != first

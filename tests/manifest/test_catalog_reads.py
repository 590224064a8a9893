"""The catalog is read again only when a manifest file changed: an edit, even within the file system's timestamp
granularity and at the same size, an added file and a removed one are all seen at once."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from support import MANIFESTS

from carml import catalog
from carml.catalog import Catalog


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "manifests"
    (root / "models").mkdir(parents=True)
    shutil.copytree(MANIFESTS / "models" / "digits-cnn", root / "models" / "digits-cnn")
    shutil.copy(MANIFESTS / "models" / "digits-cnn-onnxruntime.yaml", root / "models" / "digits-cnn-onnxruntime.yaml")
    return root


@pytest.fixture()
def settled(monkeypatch) -> None:
    """Files count as settled at once (they would after a couple of seconds; a change time cannot be set back)."""
    monkeypatch.setattr(catalog, "_SETTLED_NS", 0)


def _versions(root: Path) -> dict[str, str]:
    return {m.manifest.key: m.manifest.version for m in Catalog.load([root]).models}


def test_an_unchanged_folder_is_not_read_again(folder: Path, settled, monkeypatch) -> None:
    first = Catalog.load([folder])
    reads: list[object] = []
    real_read = Catalog._read.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(Catalog, "_read", classmethod(lambda cls, dirs: reads.append(dirs) or real_read(cls, dirs)))
    second = Catalog.load([folder])
    assert reads == []
    assert second.models[0] is first.models[0] and second is not first
    second.models.clear()  # a caller adding to (or emptying) its catalog leaves the next one whole
    assert len(Catalog.load([folder]).models) == 1


def test_a_same_size_edit_at_once_is_seen(folder: Path) -> None:
    manifest = folder / "models" / "digits-cnn-onnxruntime.yaml"
    assert _versions(folder) == {"digits-cnn@onnxruntime": "1.0.0"}
    manifest.write_text(manifest.read_text().replace("version: 1.0.0", "version: 2.0.0"))  # same size
    assert _versions(folder) == {"digits-cnn@onnxruntime": "2.0.0"}


def test_an_edit_that_leaves_every_time_as_it_was_is_seen(folder: Path, monkeypatch) -> None:
    # Within the timestamp granularity a rewrite can leave size, inode and times as they were: a read made while a
    # file was that fresh is not remembered, even once the file has aged. The folder's state is pinned here, as such
    # a file system would show it, and the clock moved on.
    manifest = folder / "models" / "digits-cnn-onnxruntime.yaml"
    pinned = catalog._folder_state((folder,))
    monkeypatch.setattr(catalog, "_folder_state", lambda _dirs: pinned)
    assert _versions(folder) == {"digits-cnn@onnxruntime": "1.0.0"}
    manifest.write_text(manifest.read_text().replace("version: 1.0.0", "version: 3.0.0"))
    later = time.time_ns() + 3 * 10**9
    monkeypatch.setattr(catalog.time, "time_ns", lambda: later)
    assert _versions(folder) == {"digits-cnn@onnxruntime": "3.0.0"}


def test_a_switched_symlink_to_hard_linked_files_is_seen(tmp_path: Path, settled) -> None:
    # Releases side by side, the files hard links of each other (same inode and times), `current` pointing at one.
    releases = []
    for release in ("v1", "v2"):
        models = tmp_path / release / "models"
        models.mkdir(parents=True)
        if not releases:
            shutil.copytree(MANIFESTS / "models" / "digits-cnn", models / "digits-cnn")
            shutil.copy(MANIFESTS / "models" / "digits-cnn-onnxruntime.yaml", models / "digits-cnn-onnxruntime.yaml")
        else:
            shutil.copytree(releases[0] / "models", models, copy_function=os.link, dirs_exist_ok=True)
        releases.append(tmp_path / release)
    current = tmp_path / "current"
    current.symlink_to(releases[0])
    assert Catalog.load([current]).models[0].source.is_relative_to(releases[0])
    switch = tmp_path / "current.new"
    switch.symlink_to(releases[1])
    switch.replace(current)
    assert Catalog.load([current]).models[0].source.is_relative_to(releases[1])


def test_added_and_removed_manifests_are_seen(folder: Path, settled) -> None:
    assert list(_versions(folder)) == ["digits-cnn@onnxruntime"]
    copy = folder / "models" / "nested" / "other.yaml"
    copy.parent.mkdir()
    copy.write_text(
        (folder / "models" / "digits-cnn-onnxruntime.yaml").read_text().replace("name: digits-cnn", "name: other-cnn")
    )
    (copy.parent / "digits-cnn").symlink_to(folder / "models" / "digits-cnn")
    assert sorted(_versions(folder)) == ["digits-cnn@onnxruntime", "other-cnn@onnxruntime"]
    copy.unlink()
    assert list(_versions(folder)) == ["digits-cnn@onnxruntime"]

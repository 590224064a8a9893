"""file: and pkg: artifacts are used in place, verified, and their hashes remembered."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from carml.artifacts import ArtifactCache, hashing
from carml.errors import ArtifactError
from carml.manifest.common import ArtifactRef
from carml.settings import Settings


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("url", ["weights/model.onnx", "file:weights/model.onnx", "./weights/model.onnx"])
def test_relative_file_resolves_in_place(settings: Settings, manifest_dir: Path, url: str) -> None:
    target = _write(manifest_dir / "weights" / "model.onnx", b"onnx bytes")
    ref = ArtifactRef(url=url, sha256=_sha(b"onnx bytes"))

    path = ArtifactCache(settings).resolve(ref, manifest_dir)

    assert path.resolve() == target.resolve()
    assert not settings.cache_dir.exists()  # used in place, nothing copied


def test_absolute_file_url(settings: Settings, manifest_dir: Path, tmp_path: Path) -> None:
    target = _write(tmp_path / "elsewhere" / "labels.txt", b"cat\ndog\n")
    ref = ArtifactRef(url=target.as_uri(), sha256=_sha(b"cat\ndog\n"))

    assert ArtifactCache(settings).resolve(ref, manifest_dir) == target


def test_file_without_sha256_and_folder(settings: Settings, manifest_dir: Path) -> None:
    (manifest_dir / "saved_model" / "variables").mkdir(parents=True)
    _write(manifest_dir / "notes.txt", b"x")
    cache = ArtifactCache(settings)

    assert cache.resolve(ArtifactRef(url="saved_model"), manifest_dir).is_dir()
    assert cache.resolve(ArtifactRef(url="notes.txt"), manifest_dir).read_bytes() == b"x"


def test_folder_with_sha256_is_refused(settings: Settings, manifest_dir: Path) -> None:
    (manifest_dir / "saved_model").mkdir()
    with pytest.raises(ArtifactError, match="is a folder"):
        ArtifactCache(settings).resolve(ArtifactRef(url="saved_model", sha256="0" * 64), manifest_dir)


def test_missing_file(settings: Settings, manifest_dir: Path) -> None:
    with pytest.raises(ArtifactError) as info:
        ArtifactCache(settings).resolve(ArtifactRef(url="nope/model.onnx"), manifest_dir)
    message = str(info.value)
    assert "nope/model.onnx" in message and "does not exist" in message
    assert str(manifest_dir) in message  # says where it looked


def test_wrong_sha256_names_file_and_both_hashes(settings: Settings, manifest_dir: Path) -> None:
    target = _write(manifest_dir / "model.onnx", b"actual content")
    expected = _sha(b"what the manifest thinks")

    with pytest.raises(ArtifactError) as info:
        ArtifactCache(settings).resolve(ArtifactRef(url="model.onnx", sha256=expected), manifest_dir)

    message = str(info.value)
    assert "model.onnx" in message and str(target) in message
    assert expected in message and _sha(b"actual content") in message


def test_verification_is_memoised_until_the_file_changes(
    settings: Settings, manifest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _write(manifest_dir / "model.bin", b"v1" * 100)
    ref = ArtifactRef(url="model.bin", sha256=_sha(b"v1" * 100))
    hashed: list[int] = []
    real_sha256 = hashlib.sha256

    def counting_sha256(*args: bytes) -> Any:
        hashed.append(1)
        return real_sha256(*args)

    monkeypatch.setattr(hashing.hashlib, "sha256", counting_sha256)  # patched after computing `ref`
    cache = ArtifactCache(settings)

    for _ in range(3):
        cache.resolve(ref, manifest_dir)
    ArtifactCache(settings).verify(ref, manifest_dir)  # the memo is per process, not per cache object
    assert len(hashed) == 1

    target.write_bytes(b"v2" * 100)  # same size, new mtime: must be hashed again, and now fails
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10_000_000))
    with pytest.raises(ArtifactError, match="failed its checksum"):
        cache.resolve(ref, manifest_dir)
    assert len(hashed) == 2


def test_verify_checks_local_files_without_copying(settings: Settings, manifest_dir: Path) -> None:
    _write(manifest_dir / "model.onnx", b"abc")
    cache = ArtifactCache(settings)

    cache.verify(ArtifactRef(url="model.onnx", sha256=_sha(b"abc")), manifest_dir)
    with pytest.raises(ArtifactError, match="failed its checksum"):
        cache.verify(ArtifactRef(url="model.onnx", sha256=_sha(b"abd")), manifest_dir)
    with pytest.raises(ArtifactError, match="does not exist"):
        cache.verify(ArtifactRef(url="gone.onnx"), manifest_dir)
    assert not settings.cache_dir.exists()


def test_verify_does_not_fetch_remote_artifacts(settings: Settings, manifest_dir: Path) -> None:
    cache = ArtifactCache(settings)
    # Port 9 on loopback: nothing listens, so any attempt to fetch would fail loudly.
    cache.verify(ArtifactRef(url="http://127.0.0.1:9/model.onnx", sha256="a" * 64), manifest_dir)
    cache.verify(ArtifactRef(url="s3://bucket/model.onnx", sha256="a" * 64), manifest_dir)
    assert not settings.cache_dir.exists()


def _pydantic_py_typed() -> Path:
    spec = importlib.util.find_spec("pydantic")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "py.typed"


def test_pkg_file_resolves_in_place(settings: Settings, manifest_dir: Path) -> None:
    real = _pydantic_py_typed()
    ref = ArtifactRef(url="pkg://pydantic/py.typed", sha256=_sha(real.read_bytes()))

    cache = ArtifactCache(settings)
    assert cache.resolve(ref, manifest_dir) == real
    cache.verify(ref, manifest_dir)
    assert not settings.cache_dir.exists()


def test_pkg_wrong_sha256(settings: Settings, manifest_dir: Path) -> None:
    with pytest.raises(ArtifactError, match="failed its checksum"):
        ArtifactCache(settings).resolve(ArtifactRef(url="pkg://pydantic/py.typed", sha256="0" * 64), manifest_dir)


def test_pkg_missing_package_says_how_to_install(settings: Settings, manifest_dir: Path) -> None:
    ref = ArtifactRef(url="pkg://carml_no_such_pkg/weights.onnx", sha256="0" * 64)
    with pytest.raises(ArtifactError) as info:
        ArtifactCache(settings).resolve(ref, manifest_dir)
    assert "not installed" in str(info.value) and "pip install carml-no-such-pkg" in str(info.value)


def test_pkg_missing_file(settings: Settings, manifest_dir: Path) -> None:
    ref = ArtifactRef(url="pkg://pydantic/weights/none.onnx", sha256="0" * 64)
    with pytest.raises(ArtifactError) as info:
        ArtifactCache(settings).resolve(ref, manifest_dir)
    assert "has no file 'weights/none.onnx'" in str(info.value) and "pydantic" in str(info.value)


def test_pkg_may_not_leave_its_package(settings: Settings, manifest_dir: Path) -> None:
    ref = ArtifactRef(url="pkg://pydantic/../yaml/__init__.py", sha256="0" * 64)
    with pytest.raises(ArtifactError, match="stay inside its package"):
        ArtifactCache(settings).resolve(ref, manifest_dir)

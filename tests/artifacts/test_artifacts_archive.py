"""Archive artifacts unpack once, safely; hostile archives are refused before anything is written."""

from __future__ import annotations

import hashlib
import io
import stat
import subprocess
import sys
import tarfile
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from carml.artifacts import ArtifactCache
from carml.errors import ArtifactError
from carml.manifest.common import ArtifactRef
from carml.settings import Settings

if TYPE_CHECKING:  # fixture types only
    from conftest import LoopbackServer

MODEL_FILES = {"resnet/saved_model.pb": b"graph", "resnet/variables/data": b"weights" * 10, "README": b"hi"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps the name exactly as given
    return buffer.getvalue()


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _files(entries: dict[str, bytes]) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [(tarfile.TarInfo(name), data) for name, data in entries.items()]


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


def test_zip_over_http_with_path_selecting_a_folder(
    settings: Settings, manifest_dir: Path, http_server: LoopbackServer
) -> None:
    data = _zip(MODEL_FILES)
    ref = ArtifactRef(url=http_server.publish("resnet.zip", data), sha256=_sha(data), archive="zip", path="resnet")

    path = ArtifactCache(settings).resolve(ref, manifest_dir)

    assert path == settings.cache_dir / "unpacked" / _sha(data) / "resnet"
    assert (path / "variables" / "data").read_bytes() == b"weights" * 10
    http_server.stop()
    assert ArtifactCache(settings).resolve(ref, manifest_dir) == path  # unpacked once, reused offline


def test_local_tar_gz_without_sha256_with_path_selecting_a_file(settings: Settings, manifest_dir: Path) -> None:
    data = _tar(_files(MODEL_FILES))
    (manifest_dir / "model.tar.gz").write_bytes(data)
    ref = ArtifactRef(url="model.tar.gz", archive="tar.gz", path="resnet/saved_model.pb")

    path = ArtifactCache(settings).resolve(ref, manifest_dir)

    # Keyed by the hash it computed, since the manifest gave none.
    assert path == settings.cache_dir / "unpacked" / _sha(data) / "resnet" / "saved_model.pb"
    assert path.read_bytes() == b"graph"


@pytest.mark.parametrize(("archive", "mode"), [("tar", "w"), ("tar.bz2", "w:bz2"), ("tar.xz", "w:xz")])
def test_other_tar_compressions(settings: Settings, manifest_dir: Path, archive: str, mode: str) -> None:
    (manifest_dir / "m.archive").write_bytes(_tar(_files(MODEL_FILES), mode))
    ref = ArtifactRef(url="m.archive", archive=archive, path="README")
    assert ArtifactCache(settings).resolve(ref, manifest_dir).read_bytes() == b"hi"


def test_missing_member_lists_top_level_entries(settings: Settings, manifest_dir: Path) -> None:
    (manifest_dir / "m.zip").write_bytes(_zip(MODEL_FILES))
    with pytest.raises(ArtifactError) as info:
        ArtifactCache(settings).resolve(ArtifactRef(url="m.zip", archive="zip", path="nope.pb"), manifest_dir)
    message = str(info.value)
    assert "m.zip" in message and "'nope.pb'" in message and "README" in message and "resnet/" in message


def test_corrupt_archive_is_a_clear_error(settings: Settings, manifest_dir: Path) -> None:
    (manifest_dir / "m.zip").write_bytes(b"this is not a zip file")
    with pytest.raises(ArtifactError, match="Could not unpack the artifact m.zip as a zip archive"):
        ArtifactCache(settings).resolve(ArtifactRef(url="m.zip", archive="zip"), manifest_dir)
    assert not any((settings.cache_dir / "unpacked").glob("*"))


def test_verify_checks_a_local_archive_without_unpacking(settings: Settings, manifest_dir: Path) -> None:
    data = _zip(MODEL_FILES)
    (manifest_dir / "m.zip").write_bytes(data)
    ArtifactCache(settings).verify(ArtifactRef(url="m.zip", sha256=_sha(data), archive="zip"), manifest_dir)
    assert not settings.cache_dir.exists()


def _zip_symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


ESCAPE_ABS = f"/tmp/carml-evil-{uuid.uuid4().hex}"

HOSTILE = {
    "zip-dotdot": ("zip", lambda: _zip({"ok.txt": b"fine", "../evil": b"escaped"}), "../evil"),
    "zip-absolute": ("zip", lambda: _zip({ESCAPE_ABS: b"escaped"}), ESCAPE_ABS),
    "zip-backslash": ("zip", lambda: _zip({"..\\evil": b"escaped"}), "..\\evil"),
    "zip-drive": ("zip", lambda: _zip({"C:/evil": b"escaped"}), "C:/evil"),
    "zip-symlink": ("zip", _zip_symlink, "link"),
    "tar-dotdot": ("tar.gz", lambda: _tar(_files({"a/../../evil": b"escaped"})), "a/../../evil"),
    "tar-absolute": ("tar.gz", lambda: _tar(_files({ESCAPE_ABS: b"escaped"})), ESCAPE_ABS),
    "tar-symlink": (
        "tar.gz",
        lambda: _tar([(tarfile.TarInfo("ok"), b"x"), _special("evil", tarfile.SYMTYPE, "/etc/passwd")]),
        "evil",
    ),
    "tar-hardlink": ("tar.gz", lambda: _tar([_special("evil", tarfile.LNKTYPE, "/etc/passwd")]), "evil"),
    "tar-device": ("tar.gz", lambda: _tar([_special("evil", tarfile.CHRTYPE)]), "evil"),
    "tar-fifo": ("tar.gz", lambda: _tar([_special("evil", tarfile.FIFOTYPE)]), "evil"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused_and_writes_nothing(
    settings: Settings, manifest_dir: Path, tmp_path: Path, case: str
) -> None:
    kind, build, member = HOSTILE[case]
    (manifest_dir / "evil.archive").write_bytes(build())

    with pytest.raises(ArtifactError) as info:
        ArtifactCache(settings).resolve(ArtifactRef(url="evil.archive", archive=kind), manifest_dir)

    message = str(info.value)
    assert message.startswith("Refusing to unpack the archive evil.archive") and f"'{member}'" in message
    assert not (settings.cache_dir / "unpacked").exists()
    assert not Path(ESCAPE_ABS).exists()
    assert [p.name for p in tmp_path.rglob("*evil*")] == ["evil.archive"]  # nothing escaped anywhere


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_too_many_members_is_refused(settings: Settings, manifest_dir: Path, kind: str) -> None:
    entries = {f"f{i}.txt": b"x" for i in range(5)}
    (manifest_dir / "many").write_bytes(_zip(entries) if kind == "zip" else _tar(_files(entries)))
    limited = replace(settings, archive_max_members=3)

    with pytest.raises(ArtifactError, match="past the limit of 3 members") as info:
        ArtifactCache(limited).resolve(ArtifactRef(url="many", archive=kind), manifest_dir)
    assert "'f3.txt'" in str(info.value)
    assert not (settings.cache_dir / "unpacked").exists()


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_too_large_expanded_size_is_refused(settings: Settings, manifest_dir: Path, kind: str) -> None:
    entries = {"small.txt": b"x" * 10, "bomb.bin": b"\0" * 100_000}  # compresses to almost nothing
    (manifest_dir / "bomb").write_bytes(_zip(entries) if kind == "zip" else _tar(_files(entries)))
    limited = replace(settings, archive_max_bytes=1000)

    with pytest.raises(ArtifactError, match="past the limit of 1000 bytes") as info:
        ArtifactCache(limited).resolve(ArtifactRef(url="bomb", archive=kind), manifest_dir)
    assert "'bomb.bin'" in str(info.value)
    assert not (settings.cache_dir / "unpacked").exists()


def test_path_may_not_leave_the_archive(settings: Settings, manifest_dir: Path) -> None:
    (manifest_dir / "m.zip").write_bytes(_zip(MODEL_FILES))
    ref = ArtifactRef(url="m.zip", archive="zip", path="../../etc")
    with pytest.raises(ArtifactError, match="must be a relative path inside the archive"):
        ArtifactCache(settings).resolve(ref, manifest_dir)


def test_concurrent_unpacks_share_one_complete_folder(settings: Settings, manifest_dir: Path) -> None:
    (manifest_dir / "m.zip").write_bytes(_zip(MODEL_FILES))
    ref = ArtifactRef(url="m.zip", archive="zip", path="resnet/variables/data")

    def resolve(_: int) -> Path:
        return ArtifactCache(settings).resolve(ref, manifest_dir)

    with ThreadPoolExecutor(max_workers=6) as pool:
        paths = set(pool.map(resolve, range(6)))
    assert len(paths) == 1 and next(iter(paths)).read_bytes() == b"weights" * 10
    leftovers = [p.name for p in (settings.cache_dir / "unpacked").iterdir()]
    assert len(leftovers) == 1 and not leftovers[0].startswith(".")  # no staging folder left behind


def test_concurrent_processes_resolve_the_same_remote_archive(
    settings: Settings, manifest_dir: Path, http_server: LoopbackServer
) -> None:
    data = _zip(MODEL_FILES)
    url = http_server.publish("resnet.zip", data)
    script = "\n".join(
        [
            "import sys",
            "from pathlib import Path",
            "from carml.artifacts import ArtifactCache",
            "from carml.manifest.common import ArtifactRef",
            "from carml.settings import Settings",
            "ref = ArtifactRef(url=sys.argv[1], sha256=sys.argv[2], archive='zip', path='README')",
            "print(ArtifactCache(Settings(cache_dir=Path(sys.argv[3]))).resolve(ref, Path(sys.argv[4])))",
        ]
    )
    argv = [sys.executable, "-c", script, url, _sha(data), str(settings.cache_dir), str(manifest_dir)]
    root = Path(__file__).resolve().parents[2]  # the repository, so `carml` imports without installing
    procs = [subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [proc.communicate(timeout=60)[0].strip() for proc in procs]

    assert [proc.returncode for proc in procs] == [0, 0, 0]
    assert len(set(outputs)) == 1 and Path(outputs[0]).read_bytes() == b"hi"
    assert [p.name for p in (settings.cache_dir / "unpacked").iterdir()] == [_sha(data)]

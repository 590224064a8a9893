"""Safe unpacking of zip and tar archives into `<cache_dir>/unpacked/<sha256>/`.

Every member is checked before anything is written: a hostile archive must not write outside its folder
(absolute paths, '..', links), create devices, or fill the disk (member count and expanded size).
"""

from __future__ import annotations

import contextlib
import lzma
import os
import re
import shutil
import stat
import tarfile
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from carml.errors import ArtifactError

TAR_MODES: dict[str, Literal["r:", "r:gz", "r:bz2", "r:xz"]] = {
    "tar": "r:",
    "tar.gz": "r:gz",
    "tar.bz2": "r:bz2",
    "tar.xz": "r:xz",
}
_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


@dataclass(frozen=True)
class Limits:
    """How much an archive may hold, and the settings that set it (named in refusals so users know what to raise)."""

    max_members: int
    max_bytes: int
    members_setting: str = "CARML_ARCHIVE_MAX_MEMBERS"
    bytes_setting: str = "CARML_ARCHIVE_MAX_BYTES"


def unsafe_name_reason(name: str) -> str | None:
    """Why a member name could escape the destination folder, or None if it is a plain relative path."""
    # Backslashes count as separators too: Windows tools write them, and Windows extraction honours them.
    normalized = name.replace("\\", "/")
    if normalized.startswith("/"):
        return "it is an absolute path"
    if re.match(r"^[A-Za-z]:", normalized):
        return "it starts with a drive letter"
    if ".." in PurePosixPath(normalized).parts:
        return "it contains a '..' component"
    if "\x00" in name:
        return "it contains a NUL character"
    return None


class _Checker:
    """Counts members and bytes as they are listed and rejects the first one that breaks a rule."""

    def __init__(self, archive: str, limits: Limits):
        self.archive, self.limits = archive, limits
        self.members = 0
        self.total = 0

    def reject(self, member: str, reason: str) -> ArtifactError:
        return ArtifactError(f"Refusing to unpack the archive {self.archive}: member '{member}' {reason}.")

    def add(self, name: str, size: int) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise self.reject(
                name, f"is past the limit of {self.limits.max_members} members ({self.limits.members_setting})"
            )
        reason = unsafe_name_reason(name)
        if reason:
            raise self.reject(name, f"is unsafe: {reason}")
        self.total += size
        if self.total > self.limits.max_bytes:
            raise self.reject(
                name,
                f"takes the expanded size past the limit of {self.limits.max_bytes} bytes "
                f"({self.limits.bytes_setting})",
            )


def _check_zip(archive: zipfile.ZipFile, checker: _Checker) -> None:
    for info in archive.infolist():
        mode = info.external_attr >> 16  # Unix mode bits, when the archiver recorded them
        kind = stat.S_IFMT(mode)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file or folder"
            raise checker.reject(info.filename, f"is {what}")
        checker.add(info.filename, info.file_size)


def _check_tar(archive: tarfile.TarFile, checker: _Checker) -> list[tarfile.TarInfo]:
    members = []
    # Iterating (not getmembers()) stops reading a huge archive at the first member past the limit.
    for member in archive:
        if member.issym() or member.islnk():
            raise checker.reject(member.name, f"is a {'symbolic' if member.issym() else 'hard'} link")
        if not (member.isreg() or member.isdir()):
            raise checker.reject(member.name, "is a device, FIFO or other special file")
        checker.add(member.name, member.size if member.isreg() else 0)
        members.append(member)
    return members


def _extract(path: Path, kind: str, dest: Path, checker: _Checker) -> None:
    if kind == "zip":
        with zipfile.ZipFile(path) as zf:
            _check_zip(zf, checker)
            dest.mkdir(parents=True)
            zf.extractall(dest)
        return
    with tarfile.open(path, TAR_MODES[kind]) as tf:
        members = _check_tar(tf, checker)
        dest.mkdir(parents=True)
        if hasattr(tarfile, "data_filter"):
            # Defence in depth: the 'data' filter re-checks paths/links and drops setuid and similar bits.
            tf.extractall(dest, members=members, filter="data")
        else:  # Python < 3.11.4 has no filters; the checks above already rejected every unsafe member
            tf.extractall(dest, members=members)


def unpack(path: Path, kind: str, sha256: str, unpacked_root: Path, limits: Limits, label: str) -> Path:
    """Unpack `path` once into `unpacked_root/<sha256>`; concurrent callers all get one complete folder."""
    final = unpacked_root / sha256
    if final.is_dir():
        return final
    if kind != "zip" and kind not in TAR_MODES:
        raise ArtifactError(f"The artifact {label} has an unknown archive type '{kind}'.")
    checker = _Checker(label, limits)
    # Unique per caller, and only created (with unpacked/ itself) once every member passed its checks,
    # so a rejected archive leaves nothing behind.
    staging = unpacked_root / f".{sha256[:16]}-{uuid.uuid4().hex}.partial"
    try:
        _extract(path, kind, staging, checker)
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():
                raise
            # Another process finished first; its folder is as good as ours.
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, _CORRUPT):  # tarfile.FilterError is a TarError, so it lands here too
            raise ArtifactError(
                f"Could not unpack the artifact {label} as a {kind} archive: {type(exc).__name__}: {exc}."
            ) from None
        raise
    return final


def select(root: Path, member: str | None, label: str) -> Path:
    """`member` (a file or folder) inside an unpacked archive, or the whole folder when None."""
    if member is None:
        return root
    cleaned = member.strip().strip("/")
    if unsafe_name_reason(cleaned):
        raise ArtifactError(
            f"The path '{member}' given for the archive {label} must be a relative path inside the archive."
        )
    target = root.joinpath(*PurePosixPath(cleaned).parts) if cleaned not in ("", ".") else root
    if target.exists():
        return target
    entries: list[str] = []
    with contextlib.suppress(OSError):
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    shown = ", ".join(entries[:10]) + (f" and {len(entries) - 10} more" if len(entries) > 10 else "")
    raise ArtifactError(
        f"The archive {label} has no member '{member}'; its top-level entries are: {shown or '(none)'}."
    )

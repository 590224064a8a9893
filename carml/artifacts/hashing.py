"""SHA-256 of files, remembered per file version so that loading a manifest twice hashes nothing twice."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from carml.errors import ChecksumMismatch

_CHUNK = 1024 * 1024

# (path, inode, size, mtime_ns) -> hex digest. A rewritten file gets a new mtime (and os.replace a new
# inode), so a stale entry can never vouch for new content; the map only grows by files actually used.
_memo: dict[tuple[str, int, int, int], str] = {}
_memo_lock = threading.Lock()


def _key(path: Path) -> tuple[str, int, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes; cached in-process for as long as the file is unchanged."""
    key = _key(path)
    with _memo_lock:
        known = _memo.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    hexdigest = digest.hexdigest()
    remember(path, hexdigest, key)
    return hexdigest


def remember(path: Path, hexdigest: str, key: tuple[str, int, int, int] | None = None) -> None:
    """Record a digest computed elsewhere (e.g. while downloading) so the next check is free."""
    with _memo_lock:
        _memo[key or _key(path)] = hexdigest


def check_sha256(path: Path, expected: str, what: str) -> None:
    """Raise `ChecksumMismatch` unless the file hashes to `expected`; `what` names the artifact for people."""
    actual = file_sha256(path)
    if actual != expected:
        raise ChecksumMismatch(
            f"The artifact {what} failed its checksum: the manifest expects sha256 {expected}, "
            f"but the file {path} has sha256 {actual}. Fix the manifest's sha256 or replace the file."
        )

"""The content-addressed blob store: `<cache_dir>/blobs/<sha256>/<name>`, written only once verified."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from carml.artifacts.hashing import file_sha256, remember
from carml.errors import ArtifactError, ChecksumMismatch


def blob_name(url: str) -> str:
    """A safe file name from the last segment of a URL's path; frameworks pick loaders by extension."""
    name = PurePosixPath(unquote(urlsplit(url).path).replace("\\", "/")).name
    # Percent-decoding can produce anything; keep a portable name that cannot leave the blob's folder.
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", name).lstrip(".")
    return name[:200] or "blob"


class BlobStore:
    """Verified downloads keyed by their SHA-256; a blob that exists is complete and correct."""

    def __init__(self, cache_dir: Path):
        self.root = cache_dir / "blobs"
        # Partial downloads live beside the blobs (same file system, so os.replace is atomic) but
        # outside them, so a crash never leaves something that looks like a blob.
        self.tmp_dir = cache_dir / "tmp"

    def path_for(self, sha256: str, url: str) -> Path:
        return self.root / sha256 / blob_name(url)

    def lookup(self, sha256: str, url: str) -> Path | None:
        """The cached blob for this URL and hash, or None; a blob that no longer verifies is dropped."""
        path = self.path_for(sha256, url)
        try:
            if file_sha256(path) == sha256:
                return path
        except FileNotFoundError:
            return None
        # Corrupted on disk (bit rot, a hand edit): forget it so that the caller downloads it again.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None

    def put(self, chunks: Iterator[bytes], sha256: str, url: str, max_bytes: int) -> Path:
        """Stream `chunks` to a temp file while hashing, verify, then atomically publish the blob.

        On any failure the temp file is removed, so the cache never holds an unverified byte.
        """
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix=f"{sha256[:16]}-", suffix=".partial")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            written = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    written += len(chunk)
                    if written > max_bytes:
                        raise ArtifactError(
                            f"The download of {url} was stopped after {max_bytes} bytes: the artifact is "
                            f"larger than the limit (raise CARML_ARTIFACT_MAX_BYTES if it is meant to be)."
                        )
                    digest.update(chunk)
                    out.write(chunk)
            actual = digest.hexdigest()
            if actual != sha256:
                raise ChecksumMismatch(
                    f"The artifact {url} failed its checksum: the manifest expects sha256 {sha256}, but the "
                    f"downloaded file has sha256 {actual}. Nothing was cached; fix the manifest or the file."
                )
            # mkstemp makes the file 0600; a blob is read by whichever process loads the model.
            os.chmod(tmp, 0o644)
            final = self.path_for(sha256, url)
            final.parent.mkdir(parents=True, exist_ok=True)
            # If another process published the same blob meanwhile, replacing it is harmless: same bytes.
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # ends a fetcher's generator early, so it closes its connection
        remember(final, sha256)
        return final

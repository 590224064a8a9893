"""`ArtifactCache`: turn a manifest's `ArtifactRef` into a local path, downloading and unpacking as needed."""

from __future__ import annotations

import contextlib
from pathlib import Path

from carml.artifacts.archive import Limits, select, unpack
from carml.artifacts.fetchers import Fetcher, fetcher_for, load_fetchers
from carml.artifacts.hashing import check_sha256, file_sha256
from carml.artifacts.local import confined, existing_file_path, pkg_path
from carml.artifacts.store import BlobStore, blob_name
from carml.errors import ArtifactError, CarmlError
from carml.manifest.common import ArtifactRef
from carml.settings import Settings
from carml.storage import ObjectStore, StorageError


class ArtifactCache:
    """Local files and package files are used in place; downloads and unpacked archives live in the cache.

    Cache layout: `blobs/<sha256>/<name>` (verified downloads), `unpacked/<sha256>/` (archive contents).

    `confine_local_files`: the service (workers, the web app) sets it, so that a manifest's `file:` artifacts and
    labels must lie, symlinks resolved, inside the manifest folder holding it (its CARML_MANIFEST_DIRS entry, or
    its own folder when it is in none); the local CLI reads what its user can.
    `limits`: the archive limits, when not the CARML_ARCHIVE_* ones (uploads have tighter ones).
    """

    def __init__(
        self,
        settings: Settings,
        shared: ObjectStore | None = None,
        *,
        confine_local_files: bool = False,
        limits: Limits | None = None,
    ):
        self.settings = settings
        self.confine_local_files = confine_local_files
        self.limits = limits or Limits(settings.archive_max_members, settings.archive_max_bytes)
        # A deployment's object store as a second level: each remote artifact is fetched from its origin
        # once, and workers on other machines copy it from the store (verified again, like any download).
        self.shared = shared
        self.blobs = BlobStore(settings.cache_dir)
        self.unpacked_root = settings.cache_dir / "unpacked"
        self._fetchers: dict[str, Fetcher] | None = None  # plugins load on the first download, not before

    def resolve(self, ref: ArtifactRef, base_dir: Path) -> Path:
        """Local path of the artifact: the file itself, or with ref.archive the unpacked folder (or ref.path
        inside it)."""
        path = self._locate(ref, base_dir)
        if ref.archive is None:
            return path
        self._require_file(ref, path)
        sha256 = ref.sha256 or file_sha256(path)  # a local archive without sha256 is keyed by its content
        root = unpack(path, ref.archive, sha256, self.unpacked_root, self.limits, ref.url)
        return select(root, ref.path, ref.url)

    def verify(self, ref: ArtifactRef, base_dir: Path) -> None:
        """For `carml validate`: check a LOCAL (file/pkg) artifact exists and matches its sha256 without
        copying; remote ones are not fetched (raise nothing)."""
        if ref.scheme in ("file", "pkg"):
            path = self._locate(ref, base_dir)
            if ref.archive is not None:
                self._require_file(ref, path)

    def _locate(self, ref: ArtifactRef, base_dir: Path) -> Path:
        scheme = ref.scheme
        if scheme == "file":
            return self._local_file(ref, base_dir)
        if scheme == "pkg":
            path = pkg_path(ref.url)
            if ref.sha256:  # the schema requires it; checked here too so that nothing depends on that
                check_sha256(path, ref.sha256, ref.url)
            return path
        return self._download(ref, scheme)

    def _local_file(self, ref: ArtifactRef, base_dir: Path) -> Path:
        path = existing_file_path(ref.url, base_dir)
        if self.confine_local_files:
            confined(path, self._manifest_root(base_dir), ref.url)
        if path.is_dir():
            if ref.sha256:
                raise ArtifactError(
                    f"The artifact {ref.url} is a folder ({path}), but a sha256 can only be checked for a "
                    f"file: remove sha256 or point the URL at a file or an archive."
                )
            return path
        if ref.sha256:
            check_sha256(path, ref.sha256, ref.url)
        return path

    def _manifest_root(self, base_dir: Path) -> Path:
        """The configured manifest folder that `base_dir` lies in, or `base_dir` itself (an upload, a user's path)."""
        folder = base_dir.resolve()
        return next((d for d in self.settings.manifest_dirs if folder.is_relative_to(d.resolve())), base_dir)

    def _download(self, ref: ArtifactRef, scheme: str) -> Path:
        if ref.sha256 is None:
            raise ArtifactError(f"The artifact {ref.url} has no sha256, so its download cannot be verified.")
        cached = self.blobs.lookup(ref.sha256, ref.url)
        if cached is not None:
            return cached
        shared = self._from_shared(ref)
        if shared is not None:
            return shared
        path = self._fetch(ref, scheme)
        self._to_shared(ref, path)
        return path

    def _shared_key(self, ref: ArtifactRef) -> str:
        return f"artifacts/{ref.sha256}/{blob_name(ref.url)}"

    def _from_shared(self, ref: ArtifactRef) -> Path | None:
        if self.shared is None or ref.sha256 is None:
            return None
        try:
            with self.shared.open_stream(self._shared_key(ref)) as stream:
                chunks = iter(lambda: stream.read(1 << 20), b"")
                return self.blobs.put(chunks, ref.sha256, ref.url, self.settings.artifact_max_bytes)
        except (StorageError, ArtifactError):
            return None  # not there, unreachable or not matching its checksum: go to the origin

    def _to_shared(self, ref: ArtifactRef, path: Path) -> None:
        if self.shared is None:
            return
        with contextlib.suppress(StorageError):  # the shared level saves downloads; a job never fails for it
            key = self._shared_key(ref)
            if not self.shared.exists(key):
                self.shared.put_file(key, path)

    def _fetch(self, ref: ArtifactRef, scheme: str) -> Path:
        if self._fetchers is None:
            self._fetchers = load_fetchers()
        fetcher = fetcher_for(self._fetchers, scheme, ref.url)
        try:
            chunks = fetcher(ref.url, self.settings)
            return self.blobs.put(chunks, ref.sha256, ref.url, self.settings.artifact_max_bytes)
        except CarmlError:
            raise
        except Exception as exc:  # a plugin's own exception types: still a message for people
            raise ArtifactError(f"Could not fetch {ref.url}: {type(exc).__name__}: {exc}.") from exc

    @staticmethod
    def _require_file(ref: ArtifactRef, path: Path) -> None:
        if path.is_dir():
            raise ArtifactError(
                f"The artifact {ref.url} is a folder ({path}), so it cannot be unpacked as a {ref.archive} archive."
            )

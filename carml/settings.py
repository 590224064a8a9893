"""Every CarML setting, read from `CARML_*` environment variables in one place.

Settings are read when asked for (`load_settings()`), never at import time, so tests and
processes can change the environment before they start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from carml.errors import CarmlError

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p)


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise CarmlError(f"{name}={value!r}: expected one of 1/0, true/false, yes/no, on/off")


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise CarmlError(f"{name}={value!r}: expected an integer") from None


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment. Defaults make a fresh checkout work with nothing configured."""

    manifest_dirs: tuple[Path, ...] = field(default_factory=lambda: (_PROJECT_ROOT / "manifests",))
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "carml")
    device: str = "auto"
    # Remote artifacts: https downloads and s3:// objects (MinIO or any S3-compatible store).
    http_timeout_s: int = 30
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_secure: bool = True
    s3_region: str | None = None
    # Extra CA certificates (PEM) trusted for https downloads and S3, beside the system ones: a private CA.
    ca_bundle: Path | None = None
    # A download larger than this is refused: a wrong URL must not fill the cache's disk.
    artifact_max_bytes: int = 4 * 1024**3
    # Archive unpacking limits: a hostile archive must not fill the disk.
    archive_max_members: int = 100_000
    archive_max_bytes: int = 8 * 1024**3


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build `Settings` from the environment (or the mapping given)."""
    env = os.environ if environ is None else environ
    defaults = Settings()
    return Settings(
        manifest_dirs=_paths(env["CARML_MANIFEST_DIRS"]) if env.get("CARML_MANIFEST_DIRS") else defaults.manifest_dirs,
        cache_dir=Path(env["CARML_CACHE_DIR"]).expanduser() if env.get("CARML_CACHE_DIR") else defaults.cache_dir,
        device=env.get("CARML_DEVICE", defaults.device),
        http_timeout_s=_int("CARML_HTTP_TIMEOUT_S", env.get("CARML_HTTP_TIMEOUT_S", str(defaults.http_timeout_s))),
        s3_endpoint=env.get("CARML_S3_ENDPOINT", defaults.s3_endpoint),
        s3_access_key=env.get("CARML_S3_ACCESS_KEY") or None,
        s3_secret_key=env.get("CARML_S3_SECRET_KEY") or None,
        s3_secure=_bool("CARML_S3_SECURE", env.get("CARML_S3_SECURE", "true")),
        s3_region=env.get("CARML_S3_REGION") or None,
        ca_bundle=Path(env["CARML_CA_BUNDLE"]).expanduser() if env.get("CARML_CA_BUNDLE") else None,
        artifact_max_bytes=_int(
            "CARML_ARTIFACT_MAX_BYTES", env.get("CARML_ARTIFACT_MAX_BYTES", str(defaults.artifact_max_bytes))
        ),
        archive_max_members=_int(
            "CARML_ARCHIVE_MAX_MEMBERS", env.get("CARML_ARCHIVE_MAX_MEMBERS", str(defaults.archive_max_members))
        ),
        archive_max_bytes=_int(
            "CARML_ARCHIVE_MAX_BYTES", env.get("CARML_ARCHIVE_MAX_BYTES", str(defaults.archive_max_bytes))
        ),
    )

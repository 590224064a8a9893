"""What a manifest published through the service must satisfy: everything a manifest file must (the safe YAML
loader, the schema, the predictor's checks), and artifacts that any worker can fetch without a shared disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from carml.artifacts import ArtifactCache
from carml.errors import ArtifactError, ChecksumMismatch, ManifestError, Problem
from carml.manifest import ModelManifest
from carml.manifest.common import ArtifactRef
from carml.manifest.loader import format_field_path, line_of, parse_yaml_text, validate_document
from carml.publishing.errors import PublishError
from carml.settings import Settings
from carml.validation import artifact_refs, framework_problems

MAX_PUBLISHED_BYTES = 256 * 1024
# NB: no `file:` and no relative paths: a published manifest has no folder on the server to resolve them against,
# and workers on other machines share no disk with the web app. `pkg://` names a file of an installed package.
PUBLISHABLE_SCHEMES = ("https", "s3", "pkg")

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class CheckedManifest:
    """A manifest ready to publish: the text exactly as given, its schema-checked form and its SHA-256."""

    text: str
    manifest: ModelManifest
    digest: str


def manifest_bytes(yaml_text: str, source: str) -> bytes:
    """The manifest's UTF-8 bytes, refused when over the size cap or not encodable (lone surrogates)."""
    try:
        raw = yaml_text.encode("utf-8")
    except UnicodeEncodeError:
        raise PublishError(f"{source}: not UTF-8 text", field="manifest") from None
    if len(raw) > MAX_PUBLISHED_BYTES:
        raise PublishError(
            f"{source}: the manifest is {len(raw)} bytes; published manifests are at most {MAX_PUBLISHED_BYTES} "
            "bytes (256 KiB)",
            field="manifest",
            status=413,
        )
    if not yaml_text.strip():
        raise PublishError(f"{source}: the manifest is empty", field="manifest")
    return raw


def _service_store(settings: Settings) -> tuple[str, str] | None:
    """(bucket, key prefix) of the service's own object store when it is in S3, else None."""
    url = urlsplit(settings.object_store)
    if url.scheme.lower() != "s3":
        return None
    return url.netloc.lower(), unquote(url.path).strip("/")


def _in_service_store(ref: ArtifactRef, store: tuple[str, str] | None) -> bool:
    if store is None or ref.scheme != "s3":
        return False
    url = urlsplit(ref.url)
    bucket, prefix = store
    key = unquote(url.path).lstrip("/")
    return url.netloc.lower() == bucket and (not prefix or key == prefix or key.startswith(f"{prefix}/"))


def remote_only_problems(manifest: ModelManifest, settings: Settings) -> list[tuple[Location, str]]:
    """(location, message) of every artifact or labels file a published manifest may not use: local files,
    schemes other than https, s3 and pkg, and objects of the service's own object store."""
    store = _service_store(settings)
    found: list[tuple[Location, str]] = []
    for loc, ref in artifact_refs(manifest):
        if ref.scheme == "file":
            found.append(
                (
                    (*loc, "url"),
                    f"{ref.url!r} is a local file: a published manifest has no folder on the server to resolve it "
                    "against; put the file on an https server or in S3 (with its sha256), or use pkg://",
                )
            )
        elif ref.scheme not in PUBLISHABLE_SCHEMES:
            allowed = ", ".join(PUBLISHABLE_SCHEMES)
            found.append(((*loc, "url"), f"unsupported URL scheme {ref.scheme!r}: a published manifest uses {allowed}"))
        elif _in_service_store(ref, store):
            # NB: workers read s3:// artifacts with the service's credentials, which also read that store: users'
            # private uploads and prediction inputs. A labels file there would show its lines in results.
            found.append(
                (
                    (*loc, "url"),
                    f"{ref.url!r} is in the service's own object store (CARML_OBJECT_STORE), which holds users' "
                    "files: put the model's files in another bucket",
                )
            )
    return found


def _package_file_problems(manifest: ModelManifest, cache: ArtifactCache) -> list[tuple[Location, str]]:
    """pkg:// files must exist in the installed package and match their sha256 (as `carml validate` checks)."""
    found: list[tuple[Location, str]] = []
    for loc, ref in artifact_refs(manifest):
        if ref.scheme != "pkg":
            continue
        try:
            cache.verify(ref, Path.cwd())  # a pkg:// path does not depend on a folder
        except ChecksumMismatch as exc:
            found.append(((*loc, "sha256"), str(exc)))
        except ArtifactError as exc:
            found.append(((*loc, "url"), str(exc)))
    return found


def _refused(problems: list[Problem]) -> PublishError:
    """One error naming every problem; its field is the first problem's (the one to fix first)."""
    return PublishError("\n".join(str(p) for p in problems), field=problems[0].field or "manifest")


def check_manifest_text(yaml_text: str, cache: ArtifactCache, source: str = "manifest") -> CheckedManifest:
    """Check a model manifest's text for publishing; raises `PublishError` listing every problem with its field path
    and line. `source` names the text in messages (a file name for the CLI)."""
    manifest_bytes(yaml_text, source)
    try:
        parsed = parse_yaml_text(yaml_text, source)
        if isinstance(parsed.data, dict) and parsed.data.get("kind") == "dataset":
            raise PublishError(
                f"{source}: kind: dataset: only model manifests are published; share a dataset by uploading it "
                "(POST /api/v1/datasets with shared=true)",
                field="kind",
            )
        manifest = validate_document(parsed.data, parsed.node, ModelManifest, source)
    except ManifestError as exc:
        raise _refused(exc.problems) from None
    found = remote_only_problems(manifest, cache.settings) + framework_problems(manifest, installed_here=False)
    found += _package_file_problems(manifest, cache)
    if found:
        raise _refused(
            [Problem(source, format_field_path(loc), message, line_of(parsed.node, loc)) for loc, message in found]
        )
    return CheckedManifest(yaml_text, manifest, parsed.digest)

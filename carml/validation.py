"""`carml validate`: check manifests against the schema, the predictor that will run them, and their files.

Every problem names the file, the field path, the line where we can find it, and what was expected.
"""

from __future__ import annotations

from pathlib import Path

from carml.artifacts import ArtifactCache
from carml.artifacts.fetchers import load_fetchers
from carml.errors import ArtifactError, ChecksumMismatch, ManifestError, Problem
from carml.manifest import DatasetManifest, ModelManifest
from carml.manifest.common import ArtifactRef
from carml.manifest.loader import format_field_path, line_of, read_yaml, validate_document
from predictors.base import Predictor
from predictors.registry import predictor_classes


def framework_problems(
    manifest: ModelManifest, *, installed_here: bool = True
) -> list[tuple[tuple[str | int, ...], str]]:
    """(field location, message) of what the predictor refuses in `manifest`; with `installed_here`, also whether
    its framework is installed on this machine at a version the manifest accepts (the web process of the service
    checks without: workers, not it, run models)."""
    classes = predictor_classes()
    name = manifest.framework.name
    if name not in classes:
        return [(("framework", "name"), f"unknown framework {name!r}; expected one of {', '.join(sorted(classes))}")]
    predictor = classes[name]
    problems = _installed_problems(predictor, manifest) if installed_here else []
    for field, message in predictor.check_manifest(manifest):
        problems.append((_parse_field(field), message))
    return problems


def _installed_problems(predictor: type[Predictor], manifest: ModelManifest) -> list[tuple[tuple[str | int, ...], str]]:
    status = predictor.availability()
    if not status.available:
        return [(("framework", "name"), status.reason)]
    if status.version and not manifest.framework.accepts(status.version):
        wanted, installed = manifest.framework.version, f"{manifest.framework.name} {status.version}"
        return [(("framework", "version"), f"constraint {wanted!r} is not met by the installed {installed}")]
    return []


def _parse_field(field: str) -> tuple[str | int, ...]:
    """'artifacts[0].url' -> ('artifacts', 0, 'url')."""
    parts: list[str | int] = []
    for chunk in field.split("."):
        name, *indexes = chunk.replace("]", "").split("[")
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indexes)
    return tuple(parts)


def artifact_refs(manifest: ModelManifest | DatasetManifest) -> list[tuple[tuple[str | int, ...], ArtifactRef]]:
    """Every file a manifest names (artifacts, labels files, a dataset's location), with its field location."""
    refs: list[tuple[tuple[str | int, ...], ArtifactRef]] = []
    if isinstance(manifest, ModelManifest):
        refs += [(("artifacts", i), ref) for i, ref in enumerate(manifest.artifacts)]
        refs += [
            (("outputs", i, "labels", "file"), o.labels.file)
            for i, o in enumerate(manifest.outputs)
            if o.labels is not None and o.labels.file is not None
        ]
    else:
        if manifest.location is not None:
            refs.append((("location",), manifest.location))
        if manifest.labels is not None and manifest.labels.file is not None:
            refs.append((("labels", "file"), manifest.labels.file))
    return refs


def fetchable_schemes() -> set[str]:
    """URL schemes an artifact may use here: local ones plus every installed fetcher's."""
    return {"file", "pkg", *load_fetchers()}


def _is_dataset(data: object, path: Path) -> bool:
    """A dataset manifest says `kind: dataset`, or sits in a `datasets` folder of a manifest tree."""
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind == "dataset" or (kind is None and path.resolve().parent.name == "datasets")


def validate_file(path: Path, cache: ArtifactCache, schemes: set[str] | None = None) -> list[Problem]:
    """All problems of one manifest file (empty when it is valid and runnable here).

    `schemes` are the artifact URL schemes that can be fetched; by default those of the installed plugins.
    """
    source = str(path)
    try:
        parsed = read_yaml(path)
        data, node = parsed.data, parsed.node
        schema = DatasetManifest if _is_dataset(data, path) else ModelManifest
        manifest = validate_document(data, node, schema, source)
    except ManifestError as exc:
        return exc.problems
    found: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(manifest, ModelManifest):
        found += framework_problems(manifest)
    schemes = schemes or fetchable_schemes()
    for loc, ref in artifact_refs(manifest):
        if ref.scheme not in schemes:
            expected = ", ".join(sorted(schemes))
            found.append(((*loc, "url"), f"unsupported URL scheme {ref.scheme!r}: expected one of {expected}"))
            continue
        try:
            cache.verify(ref, path.resolve().parent)
        except ChecksumMismatch as exc:
            found.append(((*loc, "sha256"), str(exc)))
        except ArtifactError as exc:
            found.append(((*loc, "url"), str(exc)))
    return [Problem(source, format_field_path(loc), message, line_of(node, loc)) for loc, message in found]

"""A model manifest in the words and order the model page shows it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from carml.manifest import LoadedManifest, ModelManifest
from carml.manifest.common import ArtifactRef, Labels

_MAX_INLINE_LABELS = 12


def step_text(step: BaseModel) -> str:
    """`op(key=value, ...)` for a pre- or post-processing step, leaving out unset options."""
    options = {k: v for k, v in step.model_dump(mode="json").items() if k != "op" and v is not None}
    inner = ", ".join(f"{k}={_value(v)}" for k, v in options.items())
    return f"{getattr(step, 'op', type(step).__name__)}({inner})"


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "×".join(str(v) for v in value) if all(isinstance(v, int) for v in value) else str(value)
    return str(value)


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join("any" if d == -1 else str(d) for d in shape) + "]"


def _artifact(ref: ArtifactRef) -> dict[str, Any]:
    return {"url": ref.url, "sha256": ref.sha256, "archive": ref.archive, "path": ref.path}


def _labels(labels: Labels | None) -> str | None:
    if labels is None:
        return None
    if labels.names is not None:
        shown = ", ".join(labels.names[:_MAX_INLINE_LABELS])
        more = f", … ({len(labels.names)} in all)" if len(labels.names) > _MAX_INLINE_LABELS else ""
        return f"{shown}{more}"
    assert labels.file is not None  # a manifest gives exactly one of names and file
    return f"one per line in {labels.file.url}"


def describe(loaded: LoadedManifest[ModelManifest]) -> dict[str, Any]:
    """Everything the model page shows of one manifest, already worded."""
    m = loaded.manifest
    return {
        "name": m.name,
        "version": m.version,
        "framework": m.framework.name,
        "framework_version": m.framework.version,
        "task": str(m.task),
        "modality": str(m.modality),
        "license": m.license,
        "description": m.description.strip(),
        "references": m.references,
        "hidden": m.hidden,
        "digest": loaded.digest,
        "source": loaded.source.name,
        "inputs": [
            {
                "name": i.name,
                "type": i.type,
                "element_type": str(i.element_type),
                "shape": _shape(i.shape),
                "batched": i.batched,
                "steps": [step_text(s) for s in i.preprocessing],
            }
            for i in m.inputs
        ],
        "constants": [
            {"name": c.name, "element_type": str(c.element_type), "shape": _shape(c.shape), "value": c.value}
            for c in m.constants
        ],
        "outputs": [
            {
                "name": o.name,
                "type": o.type,
                "labels": _labels(o.labels),
                "steps": [step_text(s) for s in o.postprocessing],
            }
            for o in m.outputs
        ],
        "artifacts": [_artifact(a) for a in m.artifacts],
        "attributes": {k: v for k, v in m.attributes.model_dump().items() if v is not None},
    }

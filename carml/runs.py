"""In-process runs: open a model's predictor, predict files, evaluate on a dataset.

The CLI's `--local` mode and the workers both come through here, so a queued job and a local run
measure the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carml.artifacts import ArtifactCache
from carml.catalog import Catalog
from carml.datasets import OpenedDataset, looks_like_dataset_path, manifest_for_path, open_dataset
from carml.errors import ManifestError, NotFound, Problem
from carml.evaluation.runner import EvaluationOptions, OnPrediction, Progress, ShouldStop, evaluate
from carml.labels import read_labels
from carml.manifest import LoadedManifest, ModelManifest
from carml.publishing import service_catalog
from carml.settings import Settings
from predictors.base import Predictor
from predictors.preprocessing import ItemError
from predictors.registry import get_predictor_class


def open_predictor(
    loaded: LoadedManifest[ModelManifest], cache: ArtifactCache, device: str = "auto", threads: int = 0
) -> tuple[Predictor, float]:
    """Resolve artifacts and labels, then load the model. Returns the predictor and the load time in ms.

    `threads` > 0 limits the framework's compute threads (a worker started with `--threads`)."""
    manifest = loaded.manifest
    predictor_class = get_predictor_class(manifest.framework.name)
    problems = predictor_class.check_manifest(manifest)
    if problems:
        raise ManifestError([Problem(str(loaded.source), field, message) for field, message in problems])
    predictor_class.require_runnable(manifest)  # before fetching anything for a model that cannot run
    started = time.perf_counter()
    model_path = cache.resolve(manifest.primary_artifact, loaded.folder)
    labels = {spec.name: read_labels(spec.labels, loaded.folder, cache.resolve) for spec in manifest.outputs}
    predictor = predictor_class(manifest, model_path, device)
    predictor.threads = threads
    predictor.max_image_pixels = cache.settings.image_max_pixels
    predictor.load(labels)
    return predictor, (time.perf_counter() - started) * 1000


def open_dataset_by_name(name: str, catalog: Catalog, cache: ArtifactCache) -> OpenedDataset:
    """A catalog dataset, a dataset manifest file, or a user's own data given as a path."""
    # A catalog name wins over a same-named folder in the working directory; paths are spelt as paths.
    if Path(name).suffix not in (".yaml", ".yml") and looks_like_dataset_path(name):
        return open_dataset(manifest_for_path(Path(name)), cache.resolve)
    try:
        loaded = catalog.dataset(name)
    except NotFound:
        if not Path(name).exists():
            raise
        return open_dataset(manifest_for_path(Path(name)), cache.resolve)  # a bare folder name, not in the catalog
    return open_dataset(loaded, cache.resolve)


@dataclass
class LocalRun:
    """A catalog model loaded in this process with the dataset it runs on (for `--local` runs)."""

    model: LoadedManifest[ModelManifest]
    dataset: OpenedDataset
    predictor: Predictor
    load_ms: float


def open_local_run(settings: Settings, model: str, dataset: str, framework: str | None, device: str | None) -> LocalRun:
    """Resolve the model and the dataset, then load the model; the caller closes `predictor`."""
    catalog = service_catalog(settings, local=True)
    cache = ArtifactCache(settings)
    loaded = catalog.model(model, framework)
    opened = open_dataset_by_name(dataset, catalog, cache)
    predictor, load_ms = open_predictor(loaded, cache, device or settings.device)
    return LocalRun(loaded, opened, predictor, load_ms)


def evaluate_model(
    settings: Settings,
    model: str,
    dataset: str,
    *,
    framework: str | None = None,
    device: str | None = None,
    options: EvaluationOptions | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    on_prediction: OnPrediction | None = None,
) -> dict[str, Any]:
    """Evaluate a catalog model (or manifest file) on a dataset, in this process."""
    run = open_local_run(settings, model, dataset, framework, device)
    with run.predictor:
        return evaluate(
            run.model,
            run.predictor,
            run.dataset,
            options or EvaluationOptions(),
            model_load_ms=run.load_ms,
            progress=progress,
            should_stop=should_stop,
            on_prediction=on_prediction,
        )


def predict_files(
    settings: Settings,
    model: str,
    files: Sequence[Path],
    *,
    framework: str | None = None,
    device: str | None = None,
    top_k: int | None = None,
) -> dict[str, Any]:
    """Predict each file; a file that cannot be read or decoded gets an error entry, not an exception."""
    catalog = service_catalog(settings, local=True)
    cache = ArtifactCache(settings)
    loaded = catalog.model(model, framework)
    predictor, load_ms = open_predictor(loaded, cache, device or settings.device)
    predictor.top_k = top_k
    results: list[dict[str, Any]] = []
    with predictor:
        for path in files:
            started = time.perf_counter()
            try:
                prepared = predictor.preprocess(str(path), Path(path).read_bytes())
            except (OSError, ItemError) as exc:
                results.append({"item": str(path), "error": str(exc)})
                continue
            try:
                raw = predictor.predict([prepared])[0]
                answer = predictor.postprocess(prepared, raw).to_json()
            except Exception as exc:  # a framework error on this file: report it, go on with the next
                results.append({"item": str(path), "error": f"prediction failed: {type(exc).__name__}: {exc}"})
                continue
            answer["latency_ms"] = (time.perf_counter() - started) * 1000
            results.append(answer)
    return {
        "model": loaded.manifest.name,
        "framework": loaded.manifest.framework.name,
        "device": predictor.device,
        "model_load_ms": load_ms,
        "predictions": results,
    }

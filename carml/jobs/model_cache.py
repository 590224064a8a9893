"""A per-process cache of loaded predictors, so a second job on the same model does not reload it."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from carml.artifacts import ArtifactCache
from carml.manifest import LoadedManifest, ModelManifest
from carml.runs import open_predictor
from predictors.base import Predictor


@dataclass(frozen=True)
class CachedModel:
    """A loaded predictor and how it was obtained: `hit` is False for the cold load that cost `load_ms`."""

    predictor: Predictor
    hit: bool
    load_ms: float


class ModelCache:
    """Least-recently-used loaded predictors keyed by manifest content, framework and device."""

    def __init__(self, capacity: int = 2):
        self.capacity = max(1, capacity)
        self._models: OrderedDict[tuple[str, str, str], tuple[Predictor, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, loaded: LoadedManifest[ModelManifest], cache: ArtifactCache, device: str, threads: int = 0
    ) -> CachedModel:
        key = (loaded.digest, loaded.manifest.framework.name, device)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                predictor, _ = self._models[key]
                return CachedModel(predictor, hit=True, load_ms=0.0)
            started = time.perf_counter()
            predictor, _ = open_predictor(loaded, cache, device, threads)
            load_ms = (time.perf_counter() - started) * 1000
            self._models[key] = (predictor, load_ms)
            while len(self._models) > self.capacity:
                _, (evicted, _) = self._models.popitem(last=False)
                evicted.close()
            return CachedModel(predictor, hit=False, load_ms=load_ms)

    def clear(self) -> None:
        with self._lock:
            for predictor, _ in self._models.values():
                predictor.close()
            self._models.clear()

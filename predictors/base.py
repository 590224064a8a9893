"""The predictor lifecycle every framework plugin follows: load, preprocess, predict, postprocess, close.

A plugin subclasses `Predictor`, names its framework, and implements `_load`, `_run` and (optionally)
`_close`. Preprocessing, batching and postprocessing are shared so every framework is judged by one
methodology.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from carml.errors import CarmlError, FrameworkUnavailable
from carml.images import DEFAULT_MAX_PIXELS
from carml.manifest.model import InputSpec, ModelManifest
from predictors.context import ItemContext
from predictors.postprocessing import OutputAnswer, postprocess_output
from predictors.preprocessing import (
    ItemError,
    elementwise_tail,
    finish_pixels,
    preprocess_input,
    preprocess_pixels,
)
from predictors.profiling import OperatorProfiler


@dataclass(frozen=True)
class Availability:
    """Whether a framework can run here, its installed version, and if not, why not."""

    available: bool
    version: str | None
    reason: str = ""


@dataclass
class PreparedItem:
    """An item after preprocessing: one array per model input, plus what postprocessing needs.

    An input named in `pending` holds the item's HWC pixels: its steps from that index on (normalize, cast), its
    layout and element type are applied to the whole batch (`PixelBatch`), see `Predictor.preprocess`.
    """

    item_id: str
    inputs: dict[str, np.ndarray]
    context: ItemContext = field(default_factory=ItemContext)
    pending: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PixelBatch:
    """Stacked pixels [N, H, W, C] of one image input, with its elementwise steps, layout and type still to apply."""

    spec: InputSpec
    tail: int  # the index of the first step still to apply
    pixels: np.ndarray

    def finish(self) -> np.ndarray:
        """The model-ready batch, computed by numpy exactly as item-by-item preprocessing computes it."""
        return finish_pixels(self.spec, self.tail, self.pixels)


Feed = np.ndarray | PixelBatch


class CollatedItems(list[PreparedItem]):
    """A batch's items with their feeds already stacked (`Predictor.collate`, in a prefetch thread, so the copy is
    not on the model's critical path); `Predictor.predict` uses `feeds` instead of stacking again."""

    def __init__(self, items: Sequence[PreparedItem], feeds: dict[str, Feed] | None):
        super().__init__(items)
        self.feeds = feeds


@dataclass
class ItemPrediction:
    """A model's answer for one item: per-output values (JSON-ready) and class scores for metrics."""

    item_id: str
    outputs: dict[str, dict[str, Any]]
    class_scores: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        return {"item": self.item_id, "outputs": self.outputs}


def _installed_version(distributions: Sequence[str]) -> str | None:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


class Predictor(ABC):
    """Base class of framework plugins. Subclasses set the class attributes and the three hooks."""

    #: Stable lowercase key manifests use in `framework.name`.
    framework: ClassVar[str]
    #: Module that must import for the framework to be usable.
    module: ClassVar[str]
    #: Distributions whose installed version is the framework version (first found wins).
    distributions: ClassVar[tuple[str, ...]]
    #: What to tell a user who lacks the framework.
    install_hint: ClassVar[str] = ""
    #: File suffixes of artifacts this predictor loads (empty: the predictor checks for itself).
    artifact_suffixes: ClassVar[tuple[str, ...]] = ()
    #: Values of the manifest's `framework.precision` this predictor can run.
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)

    def __init__(self, manifest: ModelManifest, model_path: Path, device: str = "auto"):
        self.manifest = manifest
        self.model_path = model_path
        self.requested_device = device
        self.device: str | None = None
        self.labels: dict[str, list[str] | None] = {}
        self.top_k: int | None = None  # overrides the manifest's top_k when set
        self.threads = 0  # compute threads for the framework when positive (set before `load`); 0: its default
        self.max_image_pixels = DEFAULT_MAX_PIXELS  # CARML_IMAGE_MAX_PIXELS, set by `carml.runs.open_predictor`
        self._constants: dict[str, np.ndarray] = {
            c.name: np.full(c.shape, c.value, dtype=c.element_type) for c in manifest.constants
        }
        # Image inputs whose last steps can run on a whole batch: input name -> index of the first such step.
        tails = {spec.name: elementwise_tail(spec) for spec in manifest.inputs if spec.batched}
        self._batch_tails = {name: tail for name, tail in tails.items() if tail is not None}

    # ------------------------------------------------------------------ discovery
    @classmethod
    def availability(cls) -> Availability:
        """Cheap check (no framework import): is the module installed, and which version."""
        try:
            spec = importlib.util.find_spec(cls.module)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            hint = f"; install it with {cls.install_hint}" if cls.install_hint else ""
            return Availability(False, None, f"{cls.module} is not installed{hint}")
        return Availability(True, _installed_version(cls.distributions) or "unknown")

    @classmethod
    def check_manifest(cls, manifest: ModelManifest) -> list[tuple[str, str]]:
        """Static checks of a manifest against this predictor: (field path, message) pairs."""
        problems = []
        url = manifest.primary_artifact.path or manifest.primary_artifact.url
        if cls.artifact_suffixes and not url.endswith(cls.artifact_suffixes):
            field = "artifacts[0].path" if manifest.primary_artifact.path else "artifacts[0].url"
            expected = ", ".join(cls.artifact_suffixes)
            problems.append((field, f"{cls.framework} loads files ending in {expected}; got {url!r}"))
        precision = manifest.framework.precision
        if precision not in cls.precisions:
            runs = ", ".join(cls.precisions)
            problems.append(("framework.precision", f"{cls.framework} runs models in {runs}; got {precision!r}"))
        return problems

    @classmethod
    def require_runnable(cls, manifest: ModelManifest) -> None:
        """Raise FrameworkUnavailable unless the framework is installed in a version the manifest accepts."""
        status = cls.availability()
        if not status.available:
            raise FrameworkUnavailable(f"cannot run {manifest.key}: {status.reason}")
        if status.version and not manifest.framework.accepts(status.version):
            raise FrameworkUnavailable(
                f"{manifest.key} needs {cls.framework} {manifest.framework.version}; {status.version} is installed"
            )

    # ------------------------------------------------------------------ lifecycle
    def load(self, labels: dict[str, list[str] | None] | None = None) -> None:
        """Load the model onto the selected device. Raises FrameworkUnavailable or CarmlError."""
        self.require_runnable(self.manifest)
        self.labels = labels or {}
        self.device = self._load(self.requested_device)

    def preprocess(
        self, item_id: str, data: bytes | np.ndarray | dict[str, Any], *, batch_steps: bool = False
    ) -> PreparedItem:
        """Raw item -> model inputs. A dict gives each input its own data; anything else feeds every input.

        With `batch_steps`, an image input's trailing elementwise steps (normalize, cast), its layout and element
        type are left for `predict` to apply to the stacked batch (once, or on the model's device): the item then
        holds its pixels. The evaluation pipeline asks for this; the results are the same either way.
        """
        ctx = ItemContext(max_image_pixels=self.max_image_pixels)
        inputs, pending = {}, {}
        for spec in self.manifest.inputs:
            value = data.get(spec.name) if isinstance(data, dict) else data
            if value is None:
                raise ItemError(f"no data for input {spec.name!r}")
            tail = self._batch_tails.get(spec.name) if batch_steps else None
            if tail is None:
                inputs[spec.name] = preprocess_input(spec, value, ctx)
            else:
                inputs[spec.name], pending[spec.name] = preprocess_pixels(spec, value, ctx, tail), tail
        return PreparedItem(item_id, inputs, ctx, pending)

    def collate(self, batch: Sequence[PreparedItem]) -> dict[str, Feed] | None:
        """The batch's feeds by input name, constants included; None when its items cannot be stacked (an unbatched
        input, or items whose shapes differ): `predict` then runs them one at a time."""
        stackable = all(spec.batched for spec in self.manifest.inputs) and all(
            item.inputs[name].shape == batch[0].inputs[name].shape for item in batch for name in item.inputs
        )
        if not batch or not stackable:
            return None
        feeds: dict[str, Feed] = dict(self._constants)
        for spec in self.manifest.inputs:
            tails = {item.pending.get(spec.name) for item in batch}
            tail = tails.pop() if len(tails) == 1 else None
            if tail is not None:
                feeds[spec.name] = PixelBatch(spec, tail, np.stack([item.inputs[spec.name] for item in batch]))
            else:
                feeds[spec.name] = np.stack([self._model_input(item, spec) for item in batch])
        return feeds

    @staticmethod
    def _model_input(item: PreparedItem, spec: InputSpec) -> np.ndarray:
        """One item's input as the model takes it (its pending steps applied, if any)."""
        tail = item.pending.get(spec.name)
        array = item.inputs[spec.name]
        return array if tail is None else finish_pixels(spec, tail, array[None])[0]

    def predict(self, batch: Sequence[PreparedItem]) -> list[dict[str, np.ndarray]]:
        """Run the model on a batch; returns each item's raw outputs by name."""
        if not batch:
            return []
        feeds = batch.feeds if isinstance(batch, CollatedItems) else self.collate(batch)
        if feeds is None:
            # Unbatched models, or items whose shapes differ: one call per item.
            return [self._run_one(item) for item in batch]
        return self._run_checked(feeds, len(batch))

    def _run_one(self, item: PreparedItem) -> dict[str, np.ndarray]:
        batched = all(spec.batched for spec in self.manifest.inputs)
        feeds: dict[str, Feed] = dict(self._constants)
        for spec in self.manifest.inputs:
            array = self._model_input(item, spec)
            feeds[spec.name] = array[None] if batched else array
        return self._run_checked(feeds, 1)[0]

    def _run_checked(self, feeds: dict[str, Feed], count: int) -> list[dict[str, np.ndarray]]:
        outputs = self._run_feeds(feeds)
        missing = [o.name for o in self.manifest.outputs if o.name not in outputs]
        if missing:
            raise ItemError(f"the model gave no output named {', '.join(missing)}; it gave {', '.join(outputs)}")
        if not all(spec.batched for spec in self.manifest.inputs):
            return [{name: outputs[name] for name in outputs}]
        return [{name: np.asarray(value)[i] for name, value in outputs.items()} for i in range(count)]

    def _run_feeds(self, feeds: dict[str, Feed]) -> dict[str, np.ndarray]:
        """One model call on feeds that may hold pixel batches, whose remaining steps numpy applies first.

        A framework that can apply them on its own device (uploading uint8 pixels, not float32) overrides this.
        """
        return self._run({name: v.finish() if isinstance(v, PixelBatch) else v for name, v in feeds.items()})

    def operator_profiler(self) -> OperatorProfiler | None:
        """A profiler giving per-operator timings (trace level `framework`); None when the framework has none."""
        return None

    def postprocess(self, item: PreparedItem, raw: dict[str, np.ndarray]) -> ItemPrediction:
        """One item's raw outputs -> answers; class scores come from the first classification output."""
        answers: dict[str, OutputAnswer] = {
            spec.name: postprocess_output(raw[spec.name], spec, self.labels.get(spec.name), item.context, self.top_k)
            for spec in self.manifest.outputs
        }
        scores = next((a.class_scores for a in answers.values() if a.class_scores is not None), None)
        return ItemPrediction(item.item_id, {name: a.value for name, a in answers.items()}, scores)

    def close(self) -> None:
        """Release the model and any device memory it holds."""
        self._close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ framework hooks
    @abstractmethod
    def _load(self, device: str) -> str:
        """Load `self.model_path` on the requested device ("auto", "cpu", "cuda", "cuda:N"); return the device used."""

    @abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One call of the model: arrays by input name -> arrays by output name (declared outputs at least)."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Free framework resources; the default drops nothing."""


def parse_device(device: str) -> tuple[str, int]:
    """("cpu" | "cuda" | "auto", index) from "cpu", "cuda", "cuda:1" or "auto"."""
    kind, _, index = device.partition(":")
    if kind not in ("auto", "cpu", "cuda") or (index and not index.isdigit()):
        raise CarmlError(f"unknown device {device!r}: expected auto, cpu, cuda or cuda:N")
    return kind, int(index or 0)

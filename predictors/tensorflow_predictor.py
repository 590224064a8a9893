"""TensorFlow predictor: Keras 3 `.keras` files (loaded in safe mode) or SavedModel folders."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from carml.errors import CarmlError, FrameworkUnavailable
from carml.manifest.model import ModelManifest
from predictors.base import Predictor, parse_device


class TensorFlowPredictor(Predictor):
    framework = "tensorflow"
    module = "tensorflow"
    distributions = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly")
    install_hint = "pip install 'carml[tensorflow]'"

    @classmethod
    def check_manifest(cls, manifest: ModelManifest) -> list[tuple[str, str]]:
        artifact = manifest.primary_artifact
        target = artifact.path or artifact.url
        if target.endswith((".keras", "/")) or artifact.archive is not None or "." not in os.path.basename(target):
            return cls._keras_constants_problem(manifest)  # a .keras file, or a SavedModel folder
        field = "artifacts[0].path" if artifact.path else "artifacts[0].url"
        return [(field, f"tensorflow loads a .keras file or a SavedModel folder; got {target!r}")]

    @classmethod
    def _keras_constants_problem(cls, manifest: ModelManifest) -> list[tuple[str, str]]:
        if manifest.constants and (manifest.primary_artifact.path or manifest.primary_artifact.url).endswith(".keras"):
            return [
                ("constants", "a .keras model is called with its declared inputs only; constants need a SavedModel")
            ]
        return []

    def _load(self, device: str) -> str:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up banner is not for our users
        import tensorflow as tf

        if self.threads > 0:
            _limit_tensorflow_threads(tf, self.threads)
        kind, index = parse_device(device)
        gpus = tf.config.list_physical_devices("GPU")
        if kind == "cuda" and len(gpus) <= index:
            raise FrameworkUnavailable(f"CUDA device {index} was requested but TensorFlow sees {len(gpus)} GPU(s)")
        chosen = f"cuda:{index}" if kind == "cuda" or (kind == "auto" and gpus) else "cpu"
        self._tf = tf
        self._tf_device = f"/GPU:{index}" if chosen.startswith("cuda") else "/CPU:0"
        try:
            with tf.device(self._tf_device):
                if self.model_path.is_dir():
                    loaded = tf.saved_model.load(str(self.model_path))
                    self._signature = loaded.signatures["serving_default"]
                    self._keep_alive = loaded
                    self._call = self._call_signature
                else:
                    import keras

                    model = keras.saving.load_model(str(self.model_path), compile=False, safe_mode=True)
                    self._keras_model = model
                    # A fixed signature with a free batch axis: a short last batch must not retrace the graph.
                    specs = [
                        tf.TensorSpec([None, *(None if d < 0 else d for d in i.shape)], i.element_type, name=i.name)
                        for i in self.manifest.inputs
                    ]
                    signature = specs if len(specs) == 1 else [{s.name: s for s in specs}]
                    self._compiled = tf.function(lambda x: model(x, training=False), input_signature=signature)
                    self._call = self._call_keras
        except Exception as exc:  # keras/TF raise many exception types for unreadable models
            raise CarmlError(f"tensorflow cannot load {self.model_path}: {exc}") from None
        return chosen

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._tf.device(self._tf_device):
            return self._call(feeds)

    def _call_keras(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [i.name for i in self.manifest.inputs]
        args: Any = feeds[names[0]] if len(names) == 1 else {n: feeds[n] for n in names}
        result = self._compiled(args)
        outputs = [o.name for o in self.manifest.outputs]
        if isinstance(result, dict):
            return {k: np.asarray(v) for k, v in result.items()}
        values = list(result) if isinstance(result, (list, tuple)) else [result]
        return {name: np.asarray(values[i]) for i, name in enumerate(outputs[: len(values)])}

    def _call_signature(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [i.name for i in self.manifest.inputs] + [c.name for c in self.manifest.constants]
        tensors = {name: self._tf.constant(feeds[name]) for name in names}
        return {k: v.numpy() for k, v in self._signature(**tensors).items()}

    def _close(self) -> None:
        self._compiled = self._keras_model = self._signature = self._keep_alive = None


def _limit_tensorflow_threads(tf: Any, threads: int) -> None:
    """TensorFlow's thread pools can be sized only before its runtime starts; later calls raise RuntimeError.

    `carml worker --threads` also sets TF_NUM_INTRAOP_THREADS before TensorFlow is imported, which covers a
    runtime another model already started in this process.
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass

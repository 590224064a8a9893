"""Find predictor plugins: the built-ins, then everything in the `carml.predictors` entry-point group.

A plugin that fails to import is reported (warning and `broken_plugins()`), never fatal: one broken
package must not take the other frameworks down.
"""

from __future__ import annotations

import importlib
import warnings
from functools import cache
from importlib.metadata import entry_points

from carml.errors import NotFound
from predictors.base import Predictor

ENTRY_POINT_GROUP = "carml.predictors"

_BUILTINS = {
    "pytorch": "predictors.pytorch_predictor:PyTorchPredictor",
    "tensorflow": "predictors.tensorflow_predictor:TensorFlowPredictor",
    "onnxruntime": "predictors.onnxruntime_predictor:OnnxRuntimePredictor",
}


def _import(target: str) -> type[Predictor]:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@cache
def _discover() -> tuple[dict[str, type[Predictor]], dict[str, str]]:
    found: dict[str, type[Predictor]] = {}
    broken: dict[str, str] = {}
    for key, target in _BUILTINS.items():
        found[key] = _import(target)  # built-ins import no framework at module level, so this cannot fail
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.value in _BUILTINS.values():
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # a third-party plugin may fail in any way; report it and carry on
            broken[ep.name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"predictor plugin {ep.name!r} ({ep.value}) failed to load: {exc}", stacklevel=2)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Predictor)):
            broken[ep.name] = f"{ep.value} is not a Predictor subclass"
            continue
        found.setdefault(cls.framework, cls)
    return found, broken


def predictor_classes() -> dict[str, type[Predictor]]:
    """Every known predictor, keyed by framework name."""
    return dict(_discover()[0])


def broken_plugins() -> dict[str, str]:
    """Entry points that failed to load, with the reason."""
    return dict(_discover()[1])


def get_predictor_class(framework: str) -> type[Predictor]:
    classes = predictor_classes()
    if framework not in classes:
        raise NotFound(f"unknown framework {framework!r}: known frameworks are {', '.join(sorted(classes))}")
    return classes[framework]

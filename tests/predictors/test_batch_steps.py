"""Image inputs' last steps (normalize, cast, layout) run once per batch, on the model's device for PyTorch, with the
same results as item by item; and PyTorch models run in bfloat16 or float16 when their manifest asks for it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from carml.artifacts import ArtifactCache
from carml.errors import ManifestError
from carml.manifest import LoadedManifest
from carml.manifest.model import InputSpec, ModelManifest
from carml.runs import open_predictor
from carml.settings import load_settings
from predictors.base import CollatedItems, PixelBatch
from predictors.context import ItemContext
from predictors.preprocessing import elementwise_tail, finish_pixels, preprocess_input, preprocess_pixels
from predictors.pytorch_predictor import PyTorchPredictor
from predictors.registry import get_predictor_class

SIZE = 8
NORMALIZE = {"op": "normalize", "scale": 0.00392156862745098, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.2, 0.25]}


def _spec(layout: str = "CHW", element_type: str = "float32", tail: list[dict[str, Any]] | None = None) -> InputSpec:
    shape = [3, SIZE, SIZE] if layout == "CHW" else [SIZE, SIZE, 3]
    steps = [{"op": "decode", "color_mode": "rgb", "layout": layout}, {"op": "resize", "size": [SIZE, SIZE]}]
    fields = {"name": "image", "type": "image", "element_type": element_type, "shape": shape}
    return InputSpec.model_validate({**fields, "preprocessing": steps + (tail or [])})


def _images(count: int, size: int = SIZE, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(count)]


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("layout", "element_type", "tail"),
    [
        ("CHW", "float32", [NORMALIZE]),
        ("HWC", "float32", [NORMALIZE]),
        ("CHW", "float16", [NORMALIZE, {"op": "cast", "element_type": "float16"}]),
        ("CHW", "float32", []),
        ("HWC", "uint8", []),
    ],
)
def test_a_batch_finishes_exactly_as_its_items_do(layout: str, element_type: str, tail: list) -> None:
    spec = _spec(layout, element_type, tail)
    start = elementwise_tail(spec)
    assert start == 2
    sources = [*_images(3, size=12), *(_png(image) for image in _images(2, seed=1))]  # arrays and encoded files
    one_by_one = np.stack([preprocess_input(spec, source, ItemContext()) for source in sources])
    pixels = np.stack([preprocess_pixels(spec, source, ItemContext(), start) for source in sources])
    assert pixels.dtype == np.uint8 and pixels.shape == (5, SIZE, SIZE, 3)
    finished = finish_pixels(spec, start, pixels)
    assert finished.dtype == one_by_one.dtype and np.array_equal(finished, one_by_one)


def test_only_trailing_elementwise_steps_after_decode_and_resize_are_left_for_the_batch() -> None:
    assert elementwise_tail(_spec(tail=[NORMALIZE])) == 2
    reordered = _spec(tail=[NORMALIZE, {"op": "resize", "size": [SIZE, SIZE]}])  # a resize after normalize
    assert elementwise_tail(reordered) is None
    audio = InputSpec.model_validate(
        {"name": "x", "type": "audio", "shape": [-1], "preprocessing": [{"op": "decode_audio", "sample_rate": 8000}]}
    )
    assert elementwise_tail(audio) is None
    tensor = InputSpec.model_validate({"name": "x", "type": "tensor", "shape": [4]})
    assert elementwise_tail(tensor) is None


# ---------------------------------------------------------------------------------------------- PyTorch
@pytest.fixture(scope="module")
def torchscript(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 5),
    ).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, SIZE, SIZE)), str(path))
    return path


def _manifest(framework: str = "pytorch", precision: str = "fp32", artifact: str = "tiny.pt") -> ModelManifest:
    return ModelManifest.model_validate(
        {
            "name": "tiny",
            "version": "1.0.0",
            "license": "MIT",
            "task": "image-classification",
            "modality": "image",
            "framework": {"name": framework, "precision": precision},
            "inputs": [_spec(tail=[NORMALIZE]).model_dump()],
            "outputs": [{"name": "logits", "type": "class-logits", "postprocessing": [{"op": "softmax"}]}],
            "artifacts": [{"url": artifact}],
        }
    )


def _predictor(path: Path, precision: str = "fp32") -> PyTorchPredictor:
    predictor = PyTorchPredictor(_manifest(precision=precision), path, "cpu")
    predictor.load()
    return predictor


def test_torch_finishes_pixels_on_its_device_exactly_as_numpy_does(torchscript: Path) -> None:
    predictor = _predictor(torchscript)
    spec = predictor.manifest.inputs[0]
    batch = PixelBatch(spec, 2, np.stack(_images(6)))
    on_device = predictor._finish_on_device(batch).numpy()
    assert on_device.dtype == np.float32 and np.array_equal(on_device, batch.finish())


def test_collated_batches_predict_what_item_by_item_preprocessing_predicts(torchscript: Path) -> None:
    predictor = _predictor(torchscript)
    images = _images(5, size=12)
    plain = [predictor.preprocess(f"{i}", image) for i, image in enumerate(images)]
    pending = [predictor.preprocess(f"{i}", image, batch_steps=True) for i, image in enumerate(images)]
    assert plain[0].inputs["image"].shape == (3, SIZE, SIZE) and pending[0].inputs["image"].shape == (SIZE, SIZE, 3)
    feeds = predictor.collate(pending)
    assert feeds is not None and isinstance(feeds["image"], PixelBatch)
    expected = [raw["logits"] for raw in predictor.predict(plain)]
    for answers in (predictor.predict(CollatedItems(pending, feeds)), predictor.predict(pending)):
        assert all(np.array_equal(raw["logits"], want) for raw, want in zip(answers, expected, strict=True))
    # One at a time (no stacking possible) gives each item's own answer too.
    single = predictor.predict([pending[2]])
    assert np.allclose(single[0]["logits"], expected[2], atol=1e-5)


def test_items_of_different_sizes_run_one_at_a_time_with_their_steps_applied(torchscript: Path) -> None:
    manifest = _manifest()
    steps = manifest.inputs[0].preprocessing
    unsized = manifest.inputs[0].model_copy(update={"shape": [3, -1, -1], "preprocessing": [steps[0], steps[2]]})
    predictor = PyTorchPredictor(manifest.model_copy(update={"inputs": [unsized]}), torchscript, "cpu")
    predictor.load()
    items = [predictor.preprocess("a", _images(1, size=8)[0], batch_steps=True)]
    items.append(predictor.preprocess("b", _images(1, size=10)[0], batch_steps=True))
    assert predictor.collate(items) is None
    answers = predictor.predict(items)
    plain = predictor.preprocess("b", _images(1, size=10)[0])
    assert np.allclose(answers[1]["logits"], predictor.predict([plain])[0]["logits"], atol=1e-6)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_manifest_can_ask_for_reduced_precision(torchscript: Path, precision: str) -> None:
    import torch

    full, reduced = _predictor(torchscript), _predictor(torchscript, precision)
    assert {p.dtype for p in reduced._module.parameters()} == {torch.bfloat16 if precision == "bf16" else torch.float16}
    assert {p.dtype for p in full._module.parameters()} == {torch.float32}
    images = _images(16, seed=3)
    want, got = (
        np.stack([raw["logits"] for raw in p.predict([p.preprocess(f"{i}", x) for i, x in enumerate(images)])])
        for p in (full, reduced)
    )
    assert got.dtype == np.float32  # answers come back as float32 whatever the model computed in
    assert not np.array_equal(got, want) and np.allclose(got, want, atol=0.05, rtol=0.05)


def test_precision_other_than_fp32_is_refused_by_frameworks_that_cannot_run_it(torchscript: Path) -> None:

    onnx = _manifest("onnxruntime", "bf16", artifact="tiny.onnx")
    problems = get_predictor_class("onnxruntime").check_manifest(onnx)
    assert ("framework.precision", "onnxruntime runs models in fp32; got 'bf16'") in problems
    assert get_predictor_class("pytorch").check_manifest(_manifest("pytorch", "bf16")) == []
    loaded = LoadedManifest(manifest=onnx, source=torchscript.parent / "tiny.yaml", digest="")
    with pytest.raises(ManifestError, match="framework.precision"):
        open_predictor(loaded, ArtifactCache(load_settings({"CARML_CACHE_DIR": str(torchscript.parent / "c")})))

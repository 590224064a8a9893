"""digits-cnn: train a small CNN on the 8x8 digits reproducibly, and export the same weights to
TorchScript, ONNX and Keras 3.

Training runs in float64 on one thread from NumPy-drawn initial weights, so the float32 weights it ends
with are bit-identical from run to run and, in practice, across CPUs.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from carml.zoo.zipfiles import FIXED_DATE_TIME, normalize_zip, write_atomic

SEED = 0
EPOCHS = 20
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
ONNX_OPSET = 13
ONNX_IR_VERSION = 8  # pinned so the file loads in older onnxruntime and its bytes don't follow the onnx package

# Layer name -> (in channels, out channels) of the two 3x3 convolutions; the head maps 32*4*4 features to 10.
_CONVS = {"conv1": (1, 16), "conv2": (16, 32)}
_FEATURES = (32, 4, 4)
_CLASSES = 10

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class TrainedModel:
    """The trained float32 weights (PyTorch names and layouts) and what training them took."""

    weights: Weights
    seconds: float
    train_size: int

    @property
    def digest(self) -> str:
        return weights_digest(self.weights)


def weights_digest(weights: Weights) -> str:
    """SHA-256 over names, shapes and bytes: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name], dtype=np.float32)
        digest.update(f"{name}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def model_input(images: np.ndarray) -> np.ndarray:
    """uint8 [N, 8, 8] pixels -> float32 [N, 1, 8, 8] in [0, 1], as the manifests' preprocessing makes."""
    return (images.astype(np.float32) * np.float32(1 / 255))[:, None, :, :]


def _torch_model() -> Any:
    from torch import nn

    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for name, (c_in, c_out) in _CONVS.items():
        layers[name] = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
        layers[f"relu{name[-1]}"] = nn.ReLU()
    layers["pool"] = nn.MaxPool2d(2)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(int(np.prod(_FEATURES)), _CLASSES)
    return nn.Sequential(layers)


def train_digits_cnn() -> TrainedModel:
    """Train on the digits train split with fixed seeds, a fixed schedule and fixed batch order."""
    import torch

    from carml.datasets.digits import load_digits_split

    images, labels = load_digits_split("train")
    x = torch.from_numpy(model_input(images)).double()
    y = torch.from_numpy(labels)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    # One thread fixes the order of every floating-point reduction; float64 makes the float32 result
    # insensitive to the reduction order that CPU-specific kernels (AVX2, AVX-512, ...) choose.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    # fork_rng: seeding must not change the caller's random state. Nothing below should draw from torch's
    # generator; the seed pins the result should some op do so anyway.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        try:
            # RandomState's streams are frozen by NumPy, and unlike torch's own init they do not depend on
            # which vectorised kernels the CPU gets; the bounds are PyTorch's default init for these layers.
            rng = np.random.RandomState(SEED)
            model = _torch_model().double()
            with torch.no_grad():
                for module in model.modules():
                    if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
                        bound = 1 / np.sqrt(module.weight[0].numel())
                        for param in (module.weight, module.bias):
                            param.copy_(torch.from_numpy(rng.uniform(-bound, bound, size=tuple(param.shape))))
            optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
            loss_fn = torch.nn.CrossEntropyLoss()
            started = time.perf_counter()
            model.train()
            for _ in range(EPOCHS):
                order = torch.from_numpy(rng.permutation(len(x)))
                for start in range(0, len(x), BATCH_SIZE):
                    batch = order[start : start + BATCH_SIZE]
                    optimizer.zero_grad()
                    loss_fn(model(x[batch]), y[batch]).backward()
                    optimizer.step()
            seconds = time.perf_counter() - started
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)
    weights = {name: t.detach().float().numpy().copy() for name, t in model.state_dict().items()}
    return TrainedModel(weights=weights, seconds=seconds, train_size=len(x))


# ---------------------------------------------------------------- TorchScript
def export_torchscript(weights: Weights, path: Path) -> None:
    """Trace the model with these weights and save it as TorchScript (`torch.jit.load`-able).

    Runs in a fresh interpreter: TorchScript names the classes of a module traced after others in the
    same process `___torch_mangle_<n>`, so the archive's bytes would depend on what ran before.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_export_torchscript_here, weights, path).result()


def _export_torchscript_here(weights: Weights, path: Path) -> None:
    import torch

    model = _torch_model().eval()
    model.load_state_dict({name: torch.from_numpy(array) for name, array in weights.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated; it is what we ship
        traced = torch.jit.trace(model, torch.zeros(1, 1, 8, 8), _store_inputs=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.jit.save(traced, str(path))
    # The *.debug_pkl records hold the tracing machine's file paths, and .data/serialization_id a checksum
    # over them, so both differ between checkouts; loading needs neither (archives before torch 2.1 lack
    # the id). 64-byte alignment of the tensors is what PyTorch itself writes.
    normalize_zip(path, keep=lambda name: not name.endswith((".debug_pkl", "/.data/serialization_id")), align=64)


def torchscript_logits(path: Path, x_nchw: np.ndarray) -> np.ndarray:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu").eval()
    with torch.inference_mode():
        return module(torch.from_numpy(x_nchw)).numpy()


# ---------------------------------------------------------------- ONNX
def export_onnx(weights: Weights, path: Path) -> None:
    """Write the graph node by node with onnx.helper.

    torch.onnx's TorchScript exporter is deprecated and the dynamo one needs onnxscript; writing the few
    nodes directly also keeps the bytes free of exporter versions, so they only change with the weights.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = []
    previous = INPUT_NAME
    for name in _CONVS:
        nodes.append(
            helper.make_node(
                "Conv",
                [previous, f"{name}.weight", f"{name}.bias"],
                [name],
                name=name,
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
                strides=[1, 1],
            )
        )
        nodes.append(helper.make_node("Relu", [name], [f"relu{name[-1]}"], name=f"relu{name[-1]}"))
        previous = f"relu{name[-1]}"
    nodes += [
        helper.make_node("MaxPool", [previous], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flatten"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flatten", "fc.weight", "fc.bias"], [OUTPUT_NAME], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        inputs=[helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 1, 8, 8])],
        outputs=[helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", _CLASSES])],
        initializer=[numpy_helper.from_array(weights[name], name) for name in weights],
    )
    model = helper.make_model(
        graph, producer_name="carml zoo build", opset_imports=[helper.make_opsetid("", ONNX_OPSET)]
    )
    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    write_atomic(path, model.SerializeToString())


def onnx_logits(path: Path, x_nchw: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: x_nchw})[0]


# ---------------------------------------------------------------- Keras 3
def _quiet_tensorflow() -> None:
    # TensorFlow reads these when first imported; they only silence its start-up logging.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def keras_weights(weights: Weights) -> dict[str, list[np.ndarray]]:
    """PyTorch weights in Keras layouts: NHWC kernels, and the head's rows in Keras' H, W, C flatten order."""
    converted = {name: [weights[f"{name}.weight"].transpose(2, 3, 1, 0), weights[f"{name}.bias"]] for name in _CONVS}
    channels, height, width = _FEATURES
    head = weights["fc.weight"].reshape(_CLASSES, channels, height, width).transpose(2, 3, 1, 0)
    converted[OUTPUT_NAME] = [head.reshape(channels * height * width, _CLASSES), weights["fc.bias"]]
    return {name: [np.ascontiguousarray(a, dtype=np.float32) for a in arrays] for name, arrays in converted.items()}


def export_keras(weights: Weights, path: Path) -> None:
    """Build the equivalent Keras model (NHWC input `image`, Dense `logits`) and save it as `.keras`."""
    _quiet_tensorflow()
    import keras

    # An explicit dtype per layer: the shared global policy would be saved with its id(), a memory address.
    dtype = "float32"
    inputs = keras.Input(shape=(8, 8, 1), name=INPUT_NAME, dtype=dtype)
    features = inputs
    for name, (_, c_out) in _CONVS.items():
        features = keras.layers.Conv2D(c_out, 3, padding="same", activation="relu", name=name, dtype=dtype)(features)
    features = keras.layers.MaxPooling2D(2, name="pool", dtype=dtype)(features)
    features = keras.layers.Flatten(name="flatten", dtype=dtype)(features)
    outputs = keras.layers.Dense(_CLASSES, name=OUTPUT_NAME, dtype=dtype)(features)
    model = keras.Model(inputs, outputs, name="digits_cnn")
    for name, arrays in keras_weights(weights).items():
        model.get_layer(name).set_weights(arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    normalize_zip(path, edit=_fixed_save_date)


def _fixed_save_date(name: str, data: bytes) -> bytes:
    """metadata.json records when the model was saved; pin it so the archive's bytes repeat."""
    if name != "metadata.json":
        return data
    import json

    metadata = json.loads(data)
    metadata["date_saved"] = "{:04d}-{:02d}-{:02d}@{:02d}:{:02d}:{:02d}".format(*FIXED_DATE_TIME)
    return json.dumps(metadata).encode()


def keras_logits(path: Path, x_nhwc: np.ndarray) -> np.ndarray:
    _quiet_tensorflow()
    import keras

    model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    return keras.ops.convert_to_numpy(model(x_nhwc, training=False))

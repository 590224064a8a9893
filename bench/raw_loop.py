"""The plain framework loop CarML is compared with: what a user writes with PIL, numpy and torch, nothing of ours.

Same batch size, same preprocessing (decode RGB, bilinear resize, scale by 1/255, ImageNet mean/std, CHW) and
the same softmax + top-5 the manifest written by `bench/image_model.py` declares; items are read from the files
the dataset manifest points at, in the order CarML reads them (class folders in name order, files sorted). The
loop is sequential, as a plain script is: read and preprocess a batch, run it, score it.

It imports only numpy, PIL and torch, so it also runs where CarML's own dependencies are not installed.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class RawRun:
    """One pass of the raw loop over a dataset."""

    items: int
    seconds: float  # reading the data through the last batch's scores; the model is loaded before
    top1_hits: int

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds

    def to_json(self) -> dict[str, Any]:
        return {"items": self.items, "seconds": round(self.seconds, 4), "items_per_s": round(self.items_per_s, 2)}


def normalize_batch(pixels: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W], scaled to [0, 1] then standardised per channel."""
    batch = pixels.astype(np.float32) * np.float32(1 / 255)
    batch -= IMAGENET_MEAN
    batch /= IMAGENET_STD
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def decode_resized(data: bytes, size: int) -> np.ndarray:
    """JPEG/PNG bytes -> uint8 [size, size, 3] RGB, resized bilinearly when the file is another size."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(rgb)


def image_files(folder: Path) -> list[tuple[Path, int]]:
    """(file, class index) for a class-folder dataset: folders in name order, their files sorted."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    return [
        (path, index)
        for index, class_folder in enumerate(classes)
        for path in sorted(class_folder.rglob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]


def encoded_batches(folder: Path, batch_size: int, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    files = image_files(folder)
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        pixels = np.stack([decode_resized(path.read_bytes(), size) for path, _ in chunk])
        yield normalize_batch(pixels), np.array([label for _, label in chunk])


def load_tensors(npz: Path) -> tuple[np.ndarray, np.ndarray]:
    """The NPZ's pixels and classes, read into memory (before the loop is timed: the raw loop's best case)."""
    with np.load(npz) as archive:
        return archive["x"], archive["y"]


def tensor_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(x), batch_size):
        yield normalize_batch(x[start : start + batch_size]), y[start : start + batch_size]


def run_raw(
    model: Any,
    batches: Iterator[tuple[np.ndarray, np.ndarray]],
    *,
    device: str = "cpu",
    dtype: Any = None,
) -> RawRun:
    """Run `model` over every batch under inference mode; `dtype` (e.g. torch.bfloat16) casts the inputs.

    Dataset class i is model class i (`bench/image_model.py` names both c0000, c0001, ...). Time runs from the
    first batch's reading (files) or slicing (arrays in memory) to the last batch's scores on the host.
    """
    import torch

    items = hits = 0
    started = time.perf_counter()
    with torch.inference_mode():
        for inputs, labels in batches:
            tensor = torch.from_numpy(inputs).to(device, non_blocking=True)
            if dtype is not None:
                tensor = tensor.to(dtype)
            logits = model(tensor).float()
            top5 = torch.softmax(logits, dim=1).topk(5, dim=1).indices.cpu().numpy()
            hits += int((top5[:, 0] == labels).sum())
            items += len(labels)
    return RawRun(items, time.perf_counter() - started, hits)


def run_raw_on_device(
    model: Any, pixels: np.ndarray, labels: np.ndarray, batch_size: int, device: str, dtype: Any = None
) -> RawRun:
    """The loop a torch user writes for pre-decoded uint8 pixels [N, H, W, 3] already in memory: each batch goes
    to the device as uint8 and is scaled, standardised and made NCHW there, then cast to `dtype` if given."""
    import torch

    mean = torch.tensor(IMAGENET_MEAN, device=device)
    std = torch.tensor(IMAGENET_STD, device=device)
    scale = torch.tensor(1 / 255, dtype=torch.float32, device=device)
    items = hits = 0
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(pixels), batch_size):
            batch = torch.from_numpy(pixels[start : start + batch_size]).to(device)
            inputs = ((batch.to(torch.float32) * scale - mean) / std).permute(0, 3, 1, 2).contiguous()
            if dtype is not None:
                inputs = inputs.to(dtype)
            top5 = torch.softmax(model(inputs).float(), dim=1).topk(5, dim=1).indices.cpu().numpy()
            truth = labels[start : start + batch_size]
            hits += int((top5[:, 0] == truth).sum())
            items += len(truth)
    return RawRun(items, time.perf_counter() - started, hits)

"""A ResNet-style image classifier and synthetic image datasets, written as a CarML manifest folder.

The benchmarks need a compute-heavy image model and thousands of labelled images without downloading
anything (torchvision is not a dependency). Everything here is seeded, so the same call writes the same
weights and the same pixels:

- `write_image_model(folder, depth=18|50, image_size=..., classes=...)` builds ResNet-18 or ResNet-50 in
  plain torch (He et al. 2015, the torchvision layout), with seeded random weights, exports it as
  TorchScript and writes `<folder>/models/<name>.yaml` with the usual ImageNet preprocessing (decode RGB,
  resize, normalize by mean/std, CHW). The weights are untrained: accuracy is not the point, throughput
  is, and an untrained network does exactly the same arithmetic as a trained one.
- `write_image_dataset(folder, name, count=..., image_size=..., form=...)` writes `count` images of
  smooth, class-dependent colour fields with noise as JPEG or PNG class folders (`<folder>/data/<name>/
  <class>/*.jpg`), or the same pixels pre-decoded as uint8 HWC arrays in an NPZ (`<folder>/data/<name>.npz`,
  `form="tensor"`), and the dataset manifest `<folder>/datasets/<name>.yaml`. The data lies outside
  `datasets/` because the catalog reads every file name under that folder on each request. Class names
  are those of the model (`c0000`, `c0001`, ...), so a dataset of 10 classes can be scored by a 1000-class
  model.

`folder` is then a manifest folder: put it on CARML_MANIFEST_DIRS (or `BenchService(manifest_dirs=...)`).
Run as a script to write one: `.venv/bin/python bench/image_model.py FOLDER --depth 18 --images 2000`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
from pathlib import Path
from typing import Any, Literal

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DATASET_FORMS = ("jpeg", "png", "tensor")
DEPTHS = {18: ("basic", (2, 2, 2, 2)), 50: ("bottleneck", (3, 4, 6, 3))}
SEED = 20240601
JPEG_QUALITY = 90

Form = Literal["jpeg", "png", "tensor"]


def label_names(classes: int) -> list[str]:
    """Class names shared by the models and the datasets written here: c0000, c0001, ..."""
    return [f"c{index:04d}" for index in range(classes)]


def model_name(depth: int, image_size: int, classes: int, precision: str = "fp32") -> str:
    """The manifest's name; the weights file is shared by every precision (`artifact_path`)."""
    base = f"bench-resnet{depth}-{image_size}px-{classes}c"
    return base if precision == "fp32" else f"{base}-{precision}"


def artifact_path(folder: Path, depth: int, image_size: int, classes: int) -> Path:
    """The TorchScript file `write_image_model` writes under `folder`."""
    name = model_name(depth, image_size, classes)
    return Path(folder) / "models" / name / f"{name}.pt"


# ---------------------------------------------------------------------------------------------- the network
def build_resnet(depth: int = 18, classes: int = 1000, seed: int = SEED) -> Any:
    """ResNet-18 or -50 as a torch module in eval mode, weights drawn from `seed` (torchvision's layout)."""
    import torch
    from torch import nn

    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {sorted(DEPTHS)}, not {depth}")
    block_kind, counts = DEPTHS[depth]

    class Basic(nn.Module):
        expansion = 1

        def __init__(self, inplanes: int, planes: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = _shortcut(inplanes, planes, stride)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + self.downsample(x))

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes: int, planes: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = _shortcut(inplanes, planes * 4, stride)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + self.downsample(x))

    def _shortcut(inplanes: int, outplanes: int, stride: int) -> nn.Module:
        if stride == 1 and inplanes == outplanes:
            return nn.Identity()
        return nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride, bias=False), nn.BatchNorm2d(outplanes))

    block = Basic if block_kind == "basic" else Bottleneck

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            layers, inplanes = [], 64
            for index, count in enumerate(counts):
                planes = 64 * 2**index
                blocks = []
                for position in range(count):
                    stride = 2 if index > 0 and position == 0 else 1
                    blocks.append(block(inplanes, planes, stride))
                    inplanes = planes * block.expansion
                layers.append(nn.Sequential(*blocks))
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(inplanes, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    torch.manual_seed(seed)
    model = ResNet()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return model.eval()


def export_torchscript(model: Any, path: Path, image_size: int) -> None:
    """Trace `model` on one image of `image_size` and save the TorchScript archive the predictor loads."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace(model, torch.zeros(1, 3, image_size, image_size), _store_inputs=False)
    torch.jit.save(traced, str(path))


def file_sha256(path: Path) -> str:
    """A file's SHA-256, read in 1 MiB chunks (artifacts are tens of MB), as a manifest's `sha256` gives it."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _flow(values: list[str] | tuple[float, ...]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def model_manifest_text(
    name: str, depth: int, image_size: int, classes: int, artifact: str, sha256: str, precision: str = "fp32"
) -> str:
    labels = ", ".join(f'"{label}"' for label in label_names(classes))
    precision_line = "" if precision == "fp32" else f"\n  precision: {precision}"  # fp32 is the default
    return f"""\
# Written by bench/image_model.py: ResNet-{depth} with seeded random (untrained) weights, for benchmarks.
name: {name}
version: 1.0.0
description: >
  ResNet-{depth} (torchvision's layout) at {image_size}x{image_size} pixels with {classes} classes and seeded random
  weights. Its accuracy means nothing; its arithmetic is that of the real network.
references:
  - https://arxiv.org/abs/1512.03385
license: Apache-2.0
task: image-classification
modality: image
framework:
  name: pytorch
  version: ">=2.1"{precision_line}
inputs:
  - name: image
    type: image
    element_type: float32
    shape: [3, {image_size}, {image_size}]
    preprocessing:
      - {{op: decode, color_mode: rgb, layout: CHW}}
      - {{op: resize, size: [{image_size}, {image_size}], method: bilinear}}
      - {{op: normalize, scale: 0.00392156862745098, mean: {_flow(IMAGENET_MEAN)}, std: {_flow(IMAGENET_STD)}}}
outputs:
  - name: logits
    type: class-logits
    labels: {{names: [{labels}]}}
    postprocessing:
      - {{op: softmax}}
      - {{op: top_k, k: 5}}
artifacts:
  - url: {artifact}
    sha256: {sha256}
attributes:
  author: CarML benchmarks
"""


def write_image_model(
    folder: Path,
    *,
    depth: int = 18,
    image_size: int = 224,
    classes: int = 1000,
    framework: str = "pytorch",
    precision: str = "fp32",
) -> str:
    """Build, export and describe the model in `folder` (a manifest folder); returns the model's name.

    `precision` (fp32, bf16, fp16) is the manifest's `framework.precision`; other precisions than fp32 get their
    own manifest (`...-bf16`) on the same weights file. Written once: a second call with the same arguments finds
    the files and only returns the name.
    """
    if framework != "pytorch":
        raise ValueError(f"only framework='pytorch' (TorchScript) is written here, not {framework!r}")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 (five stride-2 stages), not {image_size}")
    if precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be fp32, bf16 or fp16, not {precision!r}")
    folder = Path(folder)
    name = model_name(depth, image_size, classes, precision)
    manifest = folder / "models" / f"{name}.yaml"
    artifact = artifact_path(folder, depth, image_size, classes)
    if manifest.is_file() and artifact.is_file():
        return name
    if not artifact.is_file():
        export_torchscript(build_resnet(depth, classes), artifact, image_size)
    url = artifact.relative_to(manifest.parent).as_posix()
    text = model_manifest_text(name, depth, image_size, classes, url, file_sha256(artifact), precision)
    manifest.write_text(text, encoding="utf-8")
    return name


# ---------------------------------------------------------------------------------------------- the data
def synthetic_images(count: int, image_size: int, classes: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [count, size, size, 3] pixels, int64 [count] classes): smooth colour fields plus noise.

    Each class has its own low-resolution colour pattern; every image is that pattern, upsampled, jittered
    and with pixel noise, so JPEG sees photo-like content (neither flat nor pure noise).
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 256, size=(classes, 4, 4, 3), dtype=np.uint8)
    labels = np.arange(count, dtype=np.int64) % classes
    rng.shuffle(labels)
    images = np.empty((count, image_size, image_size, 3), dtype=np.uint8)
    for index, label in enumerate(labels):
        jitter = rng.integers(-40, 41, size=(4, 4, 3))
        coarse = np.clip(patterns[label].astype(np.int16) + jitter, 0, 255).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((image_size, image_size), Image.Resampling.BICUBIC))
        noise = rng.integers(-12, 13, size=smooth.shape, dtype=np.int16)
        images[index] = np.clip(smooth.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return images, labels


def _encode(pixels: np.ndarray, form: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    if form == "jpeg":
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def dataset_manifest_text(name: str, form: str, count: int, image_size: int, classes: int) -> str:
    location = f"../data/{name}.npz" if form == "tensor" else f"../data/{name}"
    fmt = "npz" if form == "tensor" else "image-folder"
    what = (
        "uint8 HWC RGB pixels in an NPZ (x: items, y: classes), pre-decoded"
        if form == "tensor"
        else f"{form.upper()} files in one folder per class"
    )
    labels = ", ".join(f'"{label}"' for label in label_names(classes))
    return f"""\
# Written by bench/image_model.py: synthetic images for benchmarks.
kind: dataset
name: {name}
version: 1.0.0
description: >
  {count} synthetic {image_size}x{image_size} images of {classes} classes (seeded colour fields with noise), as {what}.
license: CC0-1.0
modality: image
task: image-classification
format: {fmt}
location:
  url: {location}
labels: {{names: [{labels}]}}
"""


def write_image_dataset(
    folder: Path,
    name: str,
    *,
    count: int,
    image_size: int,
    form: Form = "jpeg",
    classes: int = 10,
    distinct: int | None = None,
) -> str:
    """Write `count` seeded images as `form` with a dataset manifest in `folder`; returns the dataset's name.

    The JPEG, PNG and tensor forms of the same count, size and classes hold the same pixels (JPEG lossily).
    `distinct` < `count` draws only that many images and repeats them in turn (with their classes): a large
    throughput dataset in seconds, when what the pixels are does not matter. Written once: a second call with
    the same name finds the manifest and only returns the name.
    """
    if form not in DATASET_FORMS:
        raise ValueError(f"form must be one of {DATASET_FORMS}, not {form!r}")
    if count < 1 or classes < 1 or (distinct is not None and distinct < 1):
        raise ValueError("count, classes and distinct must be at least 1")
    folder = Path(folder)
    manifest = folder / "datasets" / f"{name}.yaml"
    if manifest.is_file():
        return name
    images, labels = synthetic_images(min(count, distinct or count), image_size, classes)
    if len(images) < count:
        cycle = np.arange(count) % len(images)
        images, labels = images[cycle], labels[cycle]
    data = folder / "data"
    if form == "tensor":
        data.mkdir(parents=True, exist_ok=True)
        # Uncompressed: reading it back costs a file read, not a decompression (the point of pre-decoding).
        np.savez(data / f"{name}.npz", x=images, y=labels)
    else:
        suffix = ".jpg" if form == "jpeg" else ".png"
        names = label_names(classes)
        for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
            path = data / name / names[label] / f"{index:06d}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_encode(pixels, form))
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(dataset_manifest_text(name, form, count, image_size, classes), encoding="utf-8")
    return name


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Write a benchmark ResNet and synthetic datasets as a manifest folder."
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--depth", type=int, choices=sorted(DEPTHS), default=18)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--forms", nargs="+", choices=DATASET_FORMS, default=list(DATASET_FORMS))
    args = parser.parse_args()
    print(write_image_model(args.folder, depth=args.depth, image_size=args.image_size, classes=args.classes))
    for form in args.forms:
        name = f"bench-images-{form}-{args.images}-{args.image_size}px"
        print(write_image_dataset(args.folder, name, count=args.images, image_size=args.image_size, form=form))


if __name__ == "__main__":
    main()

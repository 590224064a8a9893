"""Run a manifest's preprocessing steps: raw item (encoded bytes or array) -> model input array.

Image steps work on HWC arrays; a CHW layout requested by `decode` is applied after the last step.
Every failure is an `ItemError`: the item is counted as unreadable and the run goes on.
"""

from __future__ import annotations

import io
import math
import time
import wave
from collections.abc import Callable
from typing import Any

import numpy as np

from carml.images import DEFAULT_MAX_PIXELS, pixel_cap_reason
from carml.manifest.model import InputSpec
from carml.manifest.steps import Cast, Decode, DecodeAudio, Frame, Normalize, Resize
from predictors.context import ItemContext

# A decoded image larger than this is refused before its pixels are allocated (decompression bombs); a worker
# uses CARML_IMAGE_MAX_PIXELS instead (through `ItemContext.max_image_pixels`).
MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS


class ItemError(Exception):
    """One item could not be prepared or predicted; the message says why."""


def _as_hwc(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        return array[:, :, None]
    if array.ndim == 3:
        return array
    raise ItemError(f"expected an image array of 2 or 3 dimensions, got shape {list(array.shape)}")


def _convert_channels(pixels: np.ndarray, color_mode: str) -> np.ndarray:
    channels = pixels.shape[2]
    if color_mode == "grayscale":
        if channels == 1:
            return pixels
        if channels in (3, 4):
            weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as PIL's "L" mode
            gray = pixels[:, :, :3].astype(np.float32) @ weights
            return np.rint(gray).astype(pixels.dtype)[:, :, None] if pixels.dtype == np.uint8 else gray[:, :, None]
    else:
        rgb = np.repeat(pixels, 3, axis=2) if channels == 1 else pixels[:, :, :3]
        if rgb.shape[2] == 3:
            return rgb[:, :, ::-1] if color_mode == "bgr" else rgb
    raise ItemError(f"cannot convert an image with {channels} channels to {color_mode}")


def _decode_bytes(data: bytes, mode: str, max_pixels: int) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            too_large = pixel_cap_reason(width, height, max_pixels)
            if too_large:
                raise ItemError(f"cannot decode image: {too_large}")
            # Photos carry their rotation in EXIF; OpenCV and browsers honour it, so must we.
            upright = ImageOps.exif_transpose(image)
            if upright.mode.startswith("I;16"):
                # 16-bit grayscale: keep the top 8 bits rather than let conversion saturate at 255.
                upright = Image.fromarray((np.asarray(upright, dtype=np.uint16) >> 8).astype(np.uint8))
            return _as_hwc(np.asarray(upright.convert(mode)))
    except UnidentifiedImageError:
        raise ItemError("cannot decode image: not a format Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise ItemError(f"cannot decode image: a decompression bomb: {exc}") from None
    except ItemError:
        raise
    except Exception as exc:  # Pillow raises many types for hostile files (DecompressionBombError, OSError ...)
        raise ItemError(f"cannot decode image: {type(exc).__name__}: {exc}") from None


def decode_image(data: bytes | np.ndarray, step: Decode, ctx: ItemContext) -> np.ndarray:
    """Encoded bytes (PNG, JPEG, ...) or an array of pixels -> HWC uint8 in the requested color mode."""
    if isinstance(data, np.ndarray):
        pixels = _as_hwc(data)
    else:
        pixels = _decode_bytes(data, "L" if step.color_mode == "grayscale" else "RGB", ctx.max_image_pixels)
    pixels = _convert_channels(pixels, step.color_mode)
    ctx.original_size = (int(pixels.shape[0]), int(pixels.shape[1]))
    return pixels


_PIL_METHODS = {"nearest": 0, "bilinear": 2, "bicubic": 3, "area": 4, "lanczos": 1}


def _resize_exact(pixels: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    from PIL import Image

    if pixels.shape[0] == height and pixels.shape[1] == width:
        return pixels
    resample = Image.Resampling(_PIL_METHODS[method])
    if pixels.dtype == np.uint8 and pixels.shape[2] in (1, 3):
        mode_input = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
        return _as_hwc(np.asarray(Image.fromarray(mode_input).resize((width, height), resample)))
    # Float or unusual channel counts: resize each channel as a 32-bit float image.
    planes = [
        np.asarray(Image.fromarray(pixels[:, :, c].astype(np.float32), mode="F").resize((width, height), resample))
        for c in range(pixels.shape[2])
    ]
    return np.stack(planes, axis=2)


def resize_image(pixels: np.ndarray, step: Resize, ctx: ItemContext) -> np.ndarray:
    """Resize (optionally keeping aspect by crop or letterbox) and record the geometry for postprocessing."""
    target_h, target_w = step.size
    if target_h * target_w > ctx.max_image_pixels:
        raise ItemError(f"resize to {target_w}x{target_h} exceeds {ctx.max_image_pixels} pixels")
    height, width = pixels.shape[:2]
    if not step.keep_aspect:
        ctx.apply_resize(target_h / height, target_w / width)
        return _resize_exact(pixels, target_h, target_w, step.method)
    fill = step.crop == "center"
    factor = max(target_h / height, target_w / width) if fill else min(target_h / height, target_w / width)
    new_h, new_w = max(1, round(height * factor)), max(1, round(width * factor))
    resized = _resize_exact(pixels, new_h, new_w, step.method)
    if fill:
        top, left = (new_h - target_h) // 2, (new_w - target_w) // 2
        out = resized[top : top + target_h, left : left + target_w]
        offset = (-float(top), -float(left))
    else:
        out = np.full((target_h, target_w, resized.shape[2]), step.pad_value, dtype=resized.dtype)
        top, left = (
            (0, 0) if step.pad_position == "bottom-right" else ((target_h - new_h) // 2, (target_w - new_w) // 2)
        )
        out[top : top + new_h, left : left + new_w] = resized
        offset = (float(top), float(left))
    ctx.apply_resize(new_h / height, new_w / width, *offset)
    return out


def normalize(array: np.ndarray, step: Normalize, ctx: ItemContext) -> np.ndarray:
    out = array.astype(np.float32) * np.float32(step.scale)
    if step.mean is not None:
        out = out - np.asarray(step.mean, dtype=np.float32)
    if step.std is not None:
        out = out / np.asarray(step.std, dtype=np.float32)
    return out


def cast(array: np.ndarray, step: Cast, ctx: ItemContext) -> np.ndarray:
    return array.astype(step.element_type)


def _read_wav(data: bytes) -> tuple[np.ndarray, int]:
    try:
        with wave.open(io.BytesIO(data)) as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, ValueError) as exc:
        raise ItemError(f"cannot decode audio (expected a PCM WAV file): {exc}") from None
    if rate <= 0 or channels <= 0:
        raise ItemError(f"WAV header is invalid: {rate} Hz, {channels} channels")
    # A truncated data chunk ends mid-frame: keep the whole frames.
    frames = frames[: len(frames) - len(frames) % (width * channels)]
    if width == 1:
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        dtype = np.int16 if width == 2 else np.int32
        samples = np.frombuffer(frames, dtype=dtype).astype(np.float32) / float(np.iinfo(dtype).max + 1)
    elif width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
        ints = raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8) | (raw[:, 2].astype(np.int32) << 16)
        samples = (np.where(ints >= 1 << 23, ints - (1 << 24), ints)).astype(np.float32) / float(1 << 23)
    else:
        raise ItemError(f"unsupported WAV sample width: {width} bytes")
    return samples.reshape(-1, channels).mean(axis=1), rate


def decode_audio(data: bytes | np.ndarray, step: DecodeAudio, ctx: ItemContext) -> np.ndarray:
    """WAV bytes -> mono float32 in [-1, 1] at the model's rate. An array is taken as samples at that rate."""
    if isinstance(data, np.ndarray):
        samples, rate = data.astype(np.float32).reshape(-1), step.sample_rate
    else:
        samples, rate = _read_wav(data)
    if rate != step.sample_rate:
        from scipy.signal import resample_poly

        divisor = math.gcd(rate, step.sample_rate)
        samples = resample_poly(samples, step.sample_rate // divisor, rate // divisor).astype(np.float32)
    ctx.sample_rate = step.sample_rate
    ctx.duration_s = samples.size / step.sample_rate
    return samples.astype(np.float32)


def frame_audio(samples: np.ndarray, step: Frame, ctx: ItemContext) -> np.ndarray:
    """[samples] -> [frames, context + frame]; each frame carries the tail of the previous one in front."""
    if samples.size == 0:
        raise ItemError("audio is empty")
    count = math.ceil(samples.size / step.frame_samples)
    frames = np.zeros((count, step.frame_samples), dtype=np.float32)
    frames.reshape(-1)[: samples.size] = samples
    if step.context_samples:
        context = np.zeros((count, step.context_samples), dtype=np.float32)
        context[1:] = frames[:-1, -step.context_samples :]
        frames = np.concatenate([context, frames], axis=1)
    ctx.frame_samples = step.frame_samples
    return frames


_STEP_RUNNERS: dict[type, Callable[[Any, Any, ItemContext], np.ndarray]] = {
    Decode: decode_image,
    DecodeAudio: decode_audio,
    Frame: frame_audio,
    Resize: resize_image,
    Normalize: normalize,
    Cast: cast,
}


_DECODE_STEPS = (Decode, DecodeAudio)


def _check_shape(array: np.ndarray | tuple[int, ...], spec: InputSpec) -> None:
    shape = array if isinstance(array, tuple) else array.shape
    expected = spec.shape
    if len(expected) != len(shape) or any(e not in (-1, a) for e, a in zip(expected, shape, strict=True)):
        raise ItemError(
            f"input {spec.name!r}: preprocessing gave shape {list(shape)}, the manifest declares {expected}"
        )


def preprocess_input(spec: InputSpec, data: bytes | np.ndarray, ctx: ItemContext) -> np.ndarray:
    """Apply every declared step to one item for one input, and check the result's shape."""
    value: Any = data
    layout = "HWC"
    for step in spec.preprocessing:
        if isinstance(step, _DECODE_STEPS):
            started = time.perf_counter()
            value = _STEP_RUNNERS[type(step)](value, step, ctx)
            ctx.decode_ms += (time.perf_counter() - started) * 1000
        else:
            value = _STEP_RUNNERS[type(step)](value, step, ctx)
        if isinstance(step, Decode):
            layout = step.layout
    if not isinstance(value, np.ndarray):
        raise ItemError(f"input {spec.name!r} is {type(value).__name__}; declare a decode step for encoded files")
    if layout == "CHW":
        value = np.transpose(value, (2, 0, 1))
    value = np.ascontiguousarray(value, dtype=spec.element_type)
    _check_shape(value, spec)
    return value


# ------------------------------------------------------------------------------------------ batch-wide steps
# Steps that act on each value alone: the same whether they run per item or once on a stacked batch.
_ELEMENTWISE = (Normalize, Cast)


def elementwise_tail(spec: InputSpec) -> int | None:
    """Where an image input's trailing run of elementwise steps (normalize, cast) begins, when every step before it
    is the decode or a resize; None for any other input.

    Those steps, the CHW transpose and the final element type can then be applied to a whole batch of pixels at
    once (`PixelBatch`), by numpy or on the model's device, instead of item by item.
    """
    steps = spec.preprocessing
    if spec.type != "image" or not steps or not isinstance(steps[0], Decode):
        return None
    start = len(steps)
    while start > 1 and isinstance(steps[start - 1], _ELEMENTWISE):
        start -= 1
    if not all(isinstance(step, Resize) for step in steps[1:start]):
        return None
    return start


def model_shape(spec: InputSpec, pixels_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape an HWC pixel array takes once the input's layout is applied."""
    decode = spec.preprocessing[0]
    if isinstance(decode, Decode) and decode.layout == "CHW":
        return (pixels_shape[2], pixels_shape[0], pixels_shape[1])
    return pixels_shape


def preprocess_pixels(spec: InputSpec, data: bytes | np.ndarray, ctx: ItemContext, tail: int) -> np.ndarray:
    """The steps before `tail` (decode, resizes) of one item: its HWC pixels, checked against the input's shape.

    `finish_pixels` (or a framework's own version of it) applies the rest to the stacked batch.
    """
    value: Any = data
    for step in spec.preprocessing[:tail]:
        if isinstance(step, Decode):
            started = time.perf_counter()
            value = decode_image(value, step, ctx)
            ctx.decode_ms += (time.perf_counter() - started) * 1000
        else:
            value = _STEP_RUNNERS[type(step)](value, step, ctx)
    _check_shape(model_shape(spec, value.shape), spec)
    return value


def finish_pixels(spec: InputSpec, tail: int, pixels: np.ndarray) -> np.ndarray:
    """Apply the steps from `tail` on, the layout and the element type to stacked pixels [N, H, W, C].

    Gives exactly what `preprocess_input` gives item by item, stacked: the same float32 operations in the same
    order, broadcast over the batch.
    """
    ctx = ItemContext()
    value = pixels
    for step in spec.preprocessing[tail:]:
        value = _STEP_RUNNERS[type(step)](value, step, ctx)
    decode = spec.preprocessing[0]
    if isinstance(decode, Decode) and decode.layout == "CHW":
        value = np.transpose(value, (0, 3, 1, 2))
    return np.ascontiguousarray(value, dtype=spec.element_type)

"""Pre- and post-processing steps a manifest declares. Each is data; predictors/ runs them.

A step is a mapping with an `op` key naming it, e.g. `{op: resize, size: [224, 224]}`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from carml.manifest.common import STRICT, ElementType

PositiveInt = Annotated[int, Field(gt=0)]
# Bounds that keep a manifest from asking for more memory than any real model needs.
PixelCount = Annotated[int, Field(gt=0, le=16384)]


class _Step(BaseModel):
    model_config = STRICT


# ---------------------------------------------------------------- preprocessing
class Decode(_Step):
    """Decode an encoded image (PNG, JPEG, ...) into pixels."""

    op: Literal["decode"] = "decode"
    color_mode: Literal["rgb", "bgr", "grayscale"] = Field(default="rgb", description="Channel order after decode.")
    layout: Literal["HWC", "CHW"] = Field(
        default="HWC",
        description="Layout the model wants. Steps work on HWC; a CHW transpose is applied after the last step.",
    )


class DecodeAudio(_Step):
    """Decode a WAV file into mono float samples in [-1, 1] at the model's sample rate."""

    op: Literal["decode_audio"] = "decode_audio"
    sample_rate: PositiveInt = Field(description="Samples per second the model expects; input is resampled.")


class Frame(_Step):
    """Cut a waveform into fixed frames, each prefixed by the tail of the previous one (zeros first).

    Gives a [frames, context_samples + frame_samples] array; the last frame is zero-padded.
    """

    op: Literal["frame"] = "frame"
    frame_samples: int = Field(gt=0, le=1_000_000, description="Samples per frame, e.g. 512 (32 ms at 16 kHz).")
    context_samples: int = Field(
        default=0, ge=0, le=1_000_000, description="Samples of the previous frame prepended to each."
    )


class Resize(_Step):
    """Resize an image to `size` = [height, width]."""

    op: Literal["resize"] = "resize"
    size: tuple[PixelCount, PixelCount] = Field(description="Target [height, width] in pixels (at most 16384).")
    method: Literal["nearest", "bilinear", "bicubic", "area", "lanczos"] = Field(
        default="bilinear", description="Interpolation; 'area' averages source pixels (best for shrinking)."
    )
    keep_aspect: bool = Field(
        default=False, description="Keep the aspect ratio: then crop (center) or pad (letterbox) to the size."
    )
    crop: Literal["none", "center"] = Field(
        default="none",
        description="With keep_aspect: 'center' scales the short side to fit and crops the rest; "
        "'none' scales the long side to fit and pads (letterbox).",
    )
    pad_value: float = Field(default=0, description="Fill value for letterbox padding (pixel units, 0-255).")
    pad_position: Literal["center", "bottom-right"] = Field(
        default="center", description="Where the image sits when padded: centred, or at the top-left corner."
    )


class Normalize(_Step):
    """Scale then standardise: x = (x * scale - mean) / std, per channel."""

    op: Literal["normalize"] = "normalize"
    scale: float = Field(default=1.0, description="Multiplier applied first, e.g. 1/255 for [0, 1] pixels.")
    mean: list[float] | None = Field(default=None, description="Per-channel (or single) mean subtracted after scale.")
    std: list[float] | None = Field(default=None, description="Per-channel (or single) divisor applied last.")

    @model_validator(mode="after")
    def _nonzero_std(self) -> Normalize:
        if self.std is not None and any(s == 0 for s in self.std):
            raise ValueError("std values must be non-zero")
        return self


class Cast(_Step):
    """Convert to the element type the model input expects."""

    op: Literal["cast"] = "cast"
    element_type: ElementType


PreprocessingStep = Annotated[Decode | DecodeAudio | Frame | Resize | Normalize | Cast, Field(discriminator="op")]


# ---------------------------------------------------------------- postprocessing
class Softmax(_Step):
    """Turn logits into probabilities along the class axis."""

    op: Literal["softmax"] = "softmax"


class TopK(_Step):
    """Keep the k most probable classes."""

    op: Literal["top_k"] = "top_k"
    k: PositiveInt = 5


class DecodeBoxes(_Step):
    """Read a YOLO-style detection head: per candidate, 4 box values then one score per class."""

    op: Literal["decode_boxes"] = "decode_boxes"
    box_format: Literal["cxcywh", "xyxy", "xywh"] = Field(
        default="cxcywh", description="How the 4 box values are laid out, in model-input pixels."
    )
    layout: Literal["attributes-first", "candidates-first"] = Field(
        default="attributes-first",
        description="attributes-first: output is [4 + classes, candidates] (YOLOv8); candidates-first: transposed.",
    )


class ScoreThreshold(_Step):
    """Drop detections scoring below `threshold`."""

    op: Literal["score_threshold"] = "score_threshold"
    threshold: float = Field(ge=0, le=1)


class NonMaxSuppression(_Step):
    """Non-maximum suppression; the kept boxes are then mapped back to the original image's pixels."""

    op: Literal["nms"] = "nms"
    iou_threshold: float = Field(default=0.45, ge=0, le=1, description="Overlap above which the weaker box goes.")
    max_detections: PositiveInt = 100
    per_class: bool = Field(default=True, description="Suppress only among boxes of the same class.")


class SpeechSegments(_Step):
    """Turn per-frame speech probabilities into [start, end] segments (seconds), Silero-VAD style."""

    op: Literal["speech_segments"] = "speech_segments"
    threshold: float = Field(default=0.5, gt=0, lt=1, description="Probability at which speech starts.")
    neg_threshold: float | None = Field(
        default=None, gt=0, lt=1, description="Probability under which speech may end (default threshold - 0.15)."
    )
    min_speech_ms: PositiveInt = Field(default=250, description="Shorter speech runs are dropped.")
    min_silence_ms: PositiveInt = Field(default=100, description="Shorter pauses do not split a segment.")
    speech_pad_ms: int = Field(default=30, ge=0, description="Padding added to each side of a segment.")


PostprocessingStep = Annotated[
    Softmax | TopK | DecodeBoxes | ScoreThreshold | NonMaxSuppression | SpeechSegments,
    Field(discriminator="op"),
]

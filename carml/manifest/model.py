"""The model manifest: everything needed to fetch, run and judge a model, as data."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from carml.manifest.common import (
    STRICT,
    ArtifactRef,
    ElementType,
    FrameworkSpec,
    Labels,
    Modality,
    Name,
    SemanticVersion,
    Task,
)
from carml.manifest.steps import (
    Decode,
    DecodeAudio,
    DecodeBoxes,
    Frame,
    NonMaxSuppression,
    PostprocessingStep,
    PreprocessingStep,
    Resize,
    ScoreThreshold,
    Softmax,
    SpeechSegments,
    TopK,
)

Dimension = Annotated[int, Field(ge=-1)]
MAX_CONSTANT_ELEMENTS = 100_000_000

OutputType = Literal[
    "class-probabilities", "class-logits", "detection-boxes", "frame-probabilities", "embedding", "raw"
]

# Which postprocessing ops make sense for which output type; anything else is a manifest error.
_ALLOWED_POSTPROCESSING: dict[str, tuple[type, ...]] = {
    "class-logits": (Softmax, TopK),
    "class-probabilities": (TopK,),
    "detection-boxes": (DecodeBoxes, ScoreThreshold, NonMaxSuppression),
    "frame-probabilities": (SpeechSegments,),
    "embedding": (),
    "raw": (),
}


class InputSpec(BaseModel):
    """One model input and how a raw item (file bytes or array) becomes it."""

    model_config = STRICT

    name: str = Field(min_length=1, description="The input's name in the model graph (ONNX/SavedModel signature).")
    type: Literal["image", "audio", "tensor"] = Field(description="What an item is before preprocessing.")
    element_type: ElementType = Field(default=ElementType.FLOAT32, description="Element type the model expects.")
    shape: list[Dimension] = Field(
        description="Shape of one item, without the batch axis; -1 marks a dimension of any size."
    )
    batched: bool = Field(
        default=True,
        description="True: items are stacked along a leading batch axis. False: the model takes one item per call "
        "(e.g. a sequence model whose first axis is time).",
    )
    preprocessing: list[PreprocessingStep] = Field(default_factory=list, description="Applied in order.")

    @model_validator(mode="after")
    def _steps_fit_type(self) -> InputSpec:
        ops = [type(step) for step in self.preprocessing]
        if self.type == "image" and (DecodeAudio in ops or Frame in ops):
            raise ValueError("decode_audio and frame apply to audio inputs, not image")
        if self.type == "audio" and (Decode in ops or Resize in ops):
            raise ValueError("decode and resize apply to image inputs, not audio")
        decoders = [i for i, op in enumerate(ops) if op in (Decode, DecodeAudio)]
        if decoders and decoders != [0]:
            raise ValueError("a decode step may appear once, as the first step")
        return self


class ConstantInput(BaseModel):
    """An input fed the same value on every call, e.g. a recurrent model's zero initial state."""

    model_config = STRICT

    name: str = Field(min_length=1)
    element_type: ElementType = ElementType.FLOAT32
    shape: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list, description="[] for a scalar.")
    value: float = Field(default=0, description="Every element is set to this value.")

    @model_validator(mode="after")
    def _bounded(self) -> ConstantInput:
        if math.prod(self.shape) > MAX_CONSTANT_ELEMENTS:
            raise ValueError(f"shape {self.shape} has more than {MAX_CONSTANT_ELEMENTS:,} elements")
        return self


class OutputSpec(BaseModel):
    """One model output: what it means and how to turn it into an answer."""

    model_config = STRICT

    name: str = Field(min_length=1, description="The output's name in the model graph.")
    type: OutputType
    labels: Labels | None = Field(default=None, description="Class names, index order.")
    postprocessing: list[PostprocessingStep] = Field(default_factory=list, description="Applied in order.")

    @model_validator(mode="after")
    def _steps_fit_type(self) -> OutputSpec:
        allowed = _ALLOWED_POSTPROCESSING[self.type]
        for step in self.postprocessing:
            if not isinstance(step, allowed):
                names = ", ".join(sorted(a.model_fields["op"].default for a in allowed)) or "none"
                raise ValueError(f"op {step.op!r} does not apply to a {self.type} output (allowed: {names})")
        if self.type == "detection-boxes" and not any(isinstance(s, DecodeBoxes) for s in self.postprocessing):
            raise ValueError("a detection-boxes output needs a decode_boxes step")
        return self


class Attributes(BaseModel):
    """Facts about the model as published, which measured results are compared against."""

    model_config = STRICT

    training_dataset: str | None = Field(default=None, description="What the model was trained on.")
    top1: float | None = Field(default=None, ge=0, le=1, description="Claimed top-1 accuracy (0-1).")
    top5: float | None = Field(default=None, ge=0, le=1, description="Claimed top-5 accuracy (0-1).")
    evaluation_dataset: str | None = Field(default=None, description="Dataset the claims were measured on.")
    author: str | None = None


class ModelManifest(BaseModel):
    """A published model. Writing one of these is all it takes to add a model to CarML."""

    model_config = STRICT

    kind: Literal["model"] = Field(default="model", description="Document kind; 'model' for model manifests.")
    name: Name = Field(description="Model name; manifests for other frameworks of the same model share it.")
    version: SemanticVersion
    description: str = Field(default="", description="One paragraph for the catalog.")
    references: list[str] = Field(default_factory=list, description="Papers, repositories, model cards.")
    license: str = Field(description="SPDX identifier or license name of the weights.")
    task: Task
    modality: Modality
    framework: FrameworkSpec
    inputs: list[InputSpec] = Field(min_length=1)
    constants: list[ConstantInput] = Field(default_factory=list, description="Inputs fed a fixed value.")
    outputs: list[OutputSpec] = Field(min_length=1)
    artifacts: list[ArtifactRef] = Field(
        min_length=1, description="The model file(s); the first is the graph the predictor loads."
    )
    attributes: Attributes = Field(default_factory=Attributes)
    hidden: bool = Field(default=False, description="Hide from catalog listings (still runnable by name).")

    @model_validator(mode="after")
    def _unique_names(self) -> ModelManifest:
        names = [i.name for i in self.inputs] + [c.name for c in self.constants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"input names must be unique; repeated: {', '.join(duplicates)}")
        outputs = [o.name for o in self.outputs]
        duplicates = sorted({n for n in outputs if outputs.count(n) > 1})
        if duplicates:
            raise ValueError(f"output names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @property
    def primary_artifact(self) -> ArtifactRef:
        return self.artifacts[0]

    @property
    def key(self) -> str:
        """Catalog key: name plus framework, since one model may be published for several frameworks."""
        return f"{self.name}@{self.framework.name}"

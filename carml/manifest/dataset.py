"""The dataset manifest: where a labelled dataset is and how to read it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from carml.manifest.common import STRICT, ArtifactRef, Labels, Modality, Name, SemanticVersion, Task


class CsvOptions(BaseModel):
    """How to read a CSV dataset: one row per item."""

    model_config = STRICT

    label_column: str = Field(default="label", description="Column holding the class (name or index).")
    path_column: str | None = Field(
        default=None, description="Column holding a file path (relative to the CSV) for each item, e.g. an image."
    )
    feature_columns: list[str] | None = Field(
        default=None, description="Numeric columns forming the item's tensor; default: every other column."
    )

    @model_validator(mode="after")
    def _one_item_source(self) -> CsvOptions:
        if self.path_column is not None and self.feature_columns is not None:
            raise ValueError("give path_column (items are files) or feature_columns (items are rows), not both")
        return self


class NpzOptions(BaseModel):
    """Array names inside an NPZ file."""

    model_config = STRICT

    x: str = Field(default="x", description="Array of items, first axis indexing items.")
    y: str = Field(default="y", description="Array of integer class indices, one per item.")


class DatasetManifest(BaseModel):
    """A labelled dataset models can be evaluated on."""

    model_config = STRICT

    kind: Literal["dataset"] = Field(default="dataset", description="Document kind; 'dataset' here.")
    name: Name
    version: SemanticVersion = "1.0.0"
    description: str = ""
    references: list[str] = Field(default_factory=list)
    license: str | None = None
    modality: Modality
    task: Task = Task.IMAGE_CLASSIFICATION
    format: Literal["image-folder", "csv", "npz", "builtin"] = Field(
        description="image-folder: one subfolder per class; csv: a label column; npz: x/y arrays; "
        "builtin: a loader shipped with CarML (see `loader`)."
    )
    location: ArtifactRef | None = Field(
        default=None, description="The data: a folder, a file, or an archive (set archive). Not used by builtin."
    )
    loader: str | None = Field(default=None, description="builtin only: the loader's name, e.g. sklearn-digits.")
    split: str = Field(default="test", description="Which split this manifest describes (train, validation, test).")
    labels: Labels | None = Field(
        default=None,
        description="Class names in index order. image-folder defaults to the sorted folder names.",
    )
    csv: CsvOptions | None = None
    npz: NpzOptions | None = None

    @model_validator(mode="after")
    def _format_fields(self) -> DatasetManifest:
        if self.format == "builtin":
            if not self.loader:
                raise ValueError("format builtin needs loader (e.g. sklearn-digits)")
        elif self.location is None:
            raise ValueError(f"format {self.format} needs location")
        elif self.loader is not None:
            raise ValueError("loader applies to format builtin only")
        if self.csv is not None and self.format != "csv":
            raise ValueError("csv options apply to format csv only")
        if self.npz is not None and self.format != "npz":
            raise ValueError("npz options apply to format npz only")
        return self

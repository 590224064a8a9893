"""Model and dataset manifests: the schema (pydantic models), safe loading, and the catalog."""

from carml.manifest.dataset import DatasetManifest
from carml.manifest.loader import (
    LoadedManifest,
    load_any_manifest,
    load_dataset_manifest,
    load_model_manifest,
)
from carml.manifest.model import ModelManifest

__all__ = [
    "DatasetManifest",
    "LoadedManifest",
    "ModelManifest",
    "load_any_manifest",
    "load_dataset_manifest",
    "load_model_manifest",
]

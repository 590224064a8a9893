"""Building blocks shared by model and dataset manifests."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# NB: frozen + extra="forbid" turns a misspelt field into an error instead of a silently ignored key.
STRICT = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

SEMVER_PATTERN = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"

Name = Annotated[
    str,
    Field(pattern=NAME_PATTERN, max_length=100, description="Lowercase identifier: letters, digits, '.', '_', '-'."),
]
SemanticVersion = Annotated[str, Field(pattern=SEMVER_PATTERN, description="Semantic version, e.g. 1.2.0.")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="Lowercase hex SHA-256 of the file.")]

# Schemes CarML resolves itself; plugins (entry-point group carml.artifact_fetchers) may add more.
BUILTIN_SCHEMES = ("file", "pkg", "http", "https", "s3")
_SCHEME_PATTERN = re.compile(r"^[a-z][a-z0-9+.-]*$")


class Modality(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    TENSOR = "tensor"
    TEXT = "text"
    TABULAR = "tabular"


class Task(StrEnum):
    IMAGE_CLASSIFICATION = "image-classification"
    OBJECT_DETECTION = "object-detection"
    VOICE_ACTIVITY_DETECTION = "voice-activity-detection"
    CLASSIFICATION = "classification"
    EMBEDDING = "embedding"
    OTHER = "other"


class ElementType(StrEnum):
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    FLOAT64 = "float64"
    INT64 = "int64"
    INT32 = "int32"
    INT8 = "int8"
    UINT8 = "uint8"
    BOOL = "bool"


def url_scheme(url: str) -> str:
    """The scheme of an artifact URL; a bare relative path counts as `file`."""
    if re.match(r"^[A-Za-z]:[\\/]", url):  # a Windows drive letter is a path, not a scheme
        return "file"
    return urlsplit(url).scheme.lower() or "file"


class ArtifactRef(BaseModel):
    """A file the manifest needs: where it is, what it must hash to, and whether to unpack it."""

    model_config = STRICT

    url: str = Field(
        min_length=1,
        description=(
            "Where the file is. A relative path or file: URL is resolved against the manifest's folder; "
            "http(s)://host/path downloads; s3://bucket/key reads from the configured S3/MinIO endpoint; "
            "pkg://package/path/in/package reads a file shipped inside an installed Python package."
        ),
    )
    sha256: Sha256 | None = Field(
        default=None, description="Required for every scheme but file; checked before anything is used or cached."
    )
    archive: Literal["zip", "tar", "tar.gz", "tar.bz2", "tar.xz"] | None = Field(
        default=None, description="Unpack the file as this archive type (safely: no absolute paths, '..' or links)."
    )
    path: str | None = Field(
        default=None, description="With archive: the file or folder inside the unpacked archive to use."
    )

    @field_validator("url")
    @classmethod
    def _well_formed_scheme(cls, url: str) -> str:
        # Whether a fetcher exists for the scheme is checked when resolving (and by `carml validate`),
        # so that a plugin can add schemes without changing the schema.
        if not _SCHEME_PATTERN.match(url_scheme(url)):
            raise ValueError(f"malformed URL scheme in {url!r}")
        return url

    @model_validator(mode="after")
    def _remote_needs_checksum(self) -> ArtifactRef:
        scheme = url_scheme(self.url)
        if scheme != "file" and self.sha256 is None:
            raise ValueError(f"sha256 is required for a {scheme}:// artifact (only local files may omit it)")
        if self.path is not None and self.archive is None:
            raise ValueError("path selects a member of an archive; set archive too")
        return self

    @property
    def scheme(self) -> str:
        return url_scheme(self.url)


class FrameworkSpec(BaseModel):
    """The framework a model runs on, and which of its versions are known to work."""

    model_config = STRICT

    name: Name = Field(description="Predictor key, e.g. pytorch, tensorflow, onnxruntime (see `carml frameworks`).")
    version: str = Field(
        default="*", description="PEP 440 constraint on the installed framework, e.g. '>=2.1,<3'. '*' accepts any."
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        default="fp32",
        description="Arithmetic the model runs in: fp32 as stored, or its weights and inputs cast to bfloat16 or "
        "float16 (pytorch only; outputs come back as float32).",
    )

    @field_validator("version")
    @classmethod
    def _valid_specifier(cls, version: str) -> str:
        if version.strip() == "*":
            return "*"
        try:
            SpecifierSet(version)
        except InvalidSpecifier:
            raise ValueError(f"{version!r} is not a version constraint; expected e.g. '>=2.1,<3' or '*'") from None
        return version

    def accepts(self, installed: str) -> bool:
        """Whether an installed version string (local tags like +cpu allowed) meets the constraint."""
        if self.version == "*":
            return True
        from packaging.version import InvalidVersion, Version

        try:
            public = Version(installed).public
        except InvalidVersion:
            return False
        return SpecifierSet(self.version).contains(public, prereleases=True)


class Labels(BaseModel):
    """Class labels: inline, or one label per line in a file."""

    model_config = STRICT

    names: list[str] | None = Field(default=None, min_length=1, description="Labels inline, index order.")
    file: ArtifactRef | None = Field(default=None, description="A text file with one label per line.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Labels:
        if (self.names is None) == (self.file is None):
            raise ValueError("give exactly one of names (inline list) or file (one label per line)")
        return self

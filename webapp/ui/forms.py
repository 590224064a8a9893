"""Reading the UI's forms: each problem becomes a message shown next to the field it concerns."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from carml.catalog import Catalog
from carml.jobs.workers import live_workers
from carml.settings import Settings
from webapp.api.params import HARDWARE_TAG, NAME

FORM_ERROR = "form"  # the key of a message about the form as a whole, shown above it


@dataclass
class Form:
    """Submitted values (as text, to show back) and the error of each field that has one."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, data: Mapping[str, str], fields: tuple[str, ...]) -> Form:
        return cls({name: (data.get(name) or "").strip() for name in fields})

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)  # the first problem of a field is the one to fix first

    def text(self, name: str, pattern: re.Pattern[str] = NAME, required: bool = False, what: str = "") -> str | None:
        value = self.values.get(name) or None
        if value is None:
            if required:
                self.error(name, f"choose {what or name}")
            return None
        if len(value) > 100 or not pattern.fullmatch(value):
            self.error(name, f"{value[:40]!r} is not a valid {what or name}")
            return None
        return value

    def whole_number(self, name: str, minimum: int, maximum: int, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if not value:
            return default
        if not re.fullmatch(r"[0-9]{1,10}", value):
            self.error(name, f"{name.replace('_', ' ')} must be a whole number, got {value[:20]!r}")
            return default
        if not minimum <= int(value) <= maximum:
            self.error(name, f"{name.replace('_', ' ')} must be between {minimum} and {maximum}")
            return default
        return int(value)

    def service_error(self, exc: Any, renames: Mapping[str, str] | None = None) -> None:
        """A JobRequestError/UploadError: its message goes next to the field it names (or above the form)."""
        name = getattr(exc, "field", None) or FORM_ERROR
        self.error((renames or {}).get(name, name), str(exc))


@dataclass(frozen=True)
class ModelChoice:
    name: str
    frameworks: tuple[str, ...]
    task: str
    modality: str


def model_choices(catalog: Catalog) -> list[ModelChoice]:
    """Catalog models (hidden ones left out) by name, each with the frameworks it is published for."""
    by_name: dict[str, list[Any]] = {}
    for loaded in catalog.models:
        if not loaded.manifest.hidden:
            by_name.setdefault(loaded.manifest.name, []).append(loaded.manifest)
    return [
        ModelChoice(name, tuple(sorted(m.framework.name for m in ms)), str(ms[0].task), str(ms[0].modality))
        for name, ms in sorted(by_name.items())
    ]


def frameworks_of(choices: list[ModelChoice]) -> list[str]:
    return sorted({f for choice in choices for f in choice.frameworks})


def live_tags(settings: Settings) -> list[str]:
    """Hardware tags a live worker serves now."""
    return sorted({w.hardware_tag for w in live_workers(settings)})


def default_hardware_tag(settings: Settings) -> str:
    """The tag a new form proposes: `cpu` when a worker serves it, else the first live tag, else none."""
    tags = live_tags(settings)
    return "cpu" if "cpu" in tags else (tags[0] if tags else "")


def hardware_tag(form: Form) -> str | None:
    return form.text("hardware_tag", HARDWARE_TAG, required=True, what="hardware tag")

"""Inputs a user can try a model on without a file of their own: the bundled samples and test digits."""

from __future__ import annotations

import functools
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from carml.settings import Settings

# Only media a model page can show; other files in samples/ folders are not offered.
_MEDIA_PREFIXES = ("image/", "audio/")
_DIGIT_PREFIX = "digit-"


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    media_type: str

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")


def _bundled(settings: Settings) -> dict[str, Path]:
    """Sample files under each manifest folder's `samples/`, by file name (the first folder wins)."""
    found: dict[str, Path] = {}
    for root in settings.manifest_dirs:
        folder = root / "samples"
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and not path.name.startswith(".") and _media_type(path.name):
                    found.setdefault(path.name, path)
    return found


def _media_type(name: str) -> str | None:
    guessed = mimetypes.guess_type(name)[0]
    return guessed if guessed and guessed.startswith(_MEDIA_PREFIXES) and guessed != "image/svg+xml" else None


def list_samples(settings: Settings) -> list[Sample]:
    """Bundled samples, then one test-split digit of each class (made on request, for digits-cnn)."""
    samples = [Sample(name, f"bundled sample {name}", _media_type(name) or "") for name in _bundled(settings)]
    digits = [Sample(f"{_DIGIT_PREFIX}{d}.png", f"handwritten digit {d} (32×32 PNG)", "image/png") for d in range(10)]
    return samples + digits


def find_sample(settings: Settings, name: str) -> Sample | None:
    return next((s for s in list_samples(settings) if s.name == name), None)


def sample_bytes(settings: Settings, name: str) -> bytes | None:
    """The content of a listed sample; None for any other name (names never reach the file system as paths)."""
    bundled = _bundled(settings)
    if name in bundled:
        return bundled[name].read_bytes()
    for digit in range(10):
        if name == f"{_DIGIT_PREFIX}{digit}.png":
            return digit_png(digit)
    return None


@functools.lru_cache(maxsize=10)
def digit_png(digit: int) -> bytes:
    """The first test-split image of `digit`, enlarged 4x like the digits-png dataset, as a PNG."""
    import numpy as np

    from carml.datasets.digits import load_digits_split
    from carml.zoo.digits_png import SCALE, encode_png_gray

    images, labels = load_digits_split("test")
    image = images[int(np.flatnonzero(labels == digit)[0])]
    return encode_png_gray(np.repeat(np.repeat(image, SCALE, axis=0), SCALE, axis=1))

"""What an uploaded dataset must satisfy besides being readable: tighter archive caps, a pixel cap on its images,
and class names that are safe to show and to export.

Each check returns the reason for refusing (or None); `carml.jobs.uploads` turns a reason into an `UploadError`.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from carml.artifacts.archive import Limits
from carml.datasets.image_folder import IMAGE_SUFFIXES
from carml.images import oversized_image_reason
from carml.settings import Settings

MAX_CLASS_NAME = 200
# Characters a spreadsheet takes as the start of a formula (CSV injection): '=', '+', '@', tab, carriage return,
# and '-' unless a number follows (a class may be called -1).
_FORMULA_START = re.compile(r"^(?:[=+@\t\r]|-(?![0-9.]))")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def upload_limits(settings: Settings) -> Limits:
    """The archive caps of an upload: the upload settings, and never more than the CARML_ARCHIVE_* ones."""
    if settings.upload_max_members <= settings.archive_max_members:
        members, members_setting = settings.upload_max_members, "CARML_UPLOAD_MAX_MEMBERS"
    else:
        members, members_setting = settings.archive_max_members, "CARML_ARCHIVE_MAX_MEMBERS"
    if settings.upload_max_expanded_bytes <= settings.archive_max_bytes:
        size, bytes_setting = settings.upload_max_expanded_bytes, "CARML_UPLOAD_MAX_EXPANDED_BYTES"
    else:
        size, bytes_setting = settings.archive_max_bytes, "CARML_ARCHIVE_MAX_BYTES"
    return Limits(members, size, members_setting, bytes_setting)


def npz_expansion_reason(path: Path, limits: Limits) -> str | None:
    """Why an NPZ expands too far to be loaded (arrays compressed from zeros: a few KB for gigabytes), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return None  # not a zip: the NPZ reader says so in its own words
    if len(members) > limits.max_members:
        return f"it holds {len(members)} arrays; at most {limits.max_members} are accepted ({limits.members_setting})"
    expanded = sum(info.file_size for info in members)
    if expanded > limits.max_bytes:
        cap = f"at most {limits.max_bytes} are accepted ({limits.bytes_setting})"
        return f"its arrays expand to {expanded} bytes; {cap}"
    return None


def oversized_image(unpacked: Path, max_pixels: int) -> tuple[str, str] | None:
    """(path inside the archive, reason) of the first image under `unpacked` that declares too many pixels.

    Only headers are read: a folder of ordinary images is checked in a fraction of the time decoding them takes.
    """
    for path in sorted(unpacked.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            reason = oversized_image_reason(path, max_pixels)
            if reason:
                # The first part is the cache's <sha256> folder, not a name the user knows.
                return "/".join(path.relative_to(unpacked).parts[1:]), reason
    return None


def class_name_reason(label: str) -> str | None:
    """Why a class name (a folder name, a CSV label) is refused: it reaches pages, reports and CSV exports."""
    if len(label) > MAX_CLASS_NAME:
        return f"is longer than {MAX_CLASS_NAME} characters"
    if _CONTROL.search(label):
        return "contains control characters (NUL, newline ...)"
    if _FORMULA_START.match(label):
        return "starts like a spreadsheet formula (=, +, -, @); rename the class"
    return None

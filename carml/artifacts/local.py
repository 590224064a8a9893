"""Locate artifacts that are already on this machine: file paths/URLs and files inside Python packages."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit
from urllib.request import url2pathname

from carml.errors import ArtifactError


def file_path(url: str, base_dir: Path) -> Path:
    """The path a `file` artifact names: bare paths and file: URLs, relative ones against `base_dir`."""
    if re.match(r"^[A-Za-z]:[\\/]", url) or not url.lower().startswith("file:"):
        # A bare path is taken literally: no percent-decoding, so '%' in a file name means '%'.
        path = Path(url)
    else:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ArtifactError(
                f"The artifact URL {url} names the host '{parts.netloc}'; file: URLs can only name this "
                f"machine (use file:///absolute/path or a relative path)."
            )
        path = Path(url2pathname(parts.path))
    return path if path.is_absolute() else base_dir / path


def existing_file_path(url: str, base_dir: Path) -> Path:
    """Like `file_path`, but the file or folder must exist."""
    path = file_path(url, base_dir)
    if not path.exists():
        raise ArtifactError(f"The artifact {url} does not exist (looked for {path}).")
    return path


def confined(path: Path, root: Path, url: str) -> Path:
    """`path` with symlinks resolved, which must lie inside `root` (the manifest folder tree holding the manifest).

    What the service runs must not read the server's own files (`../../etc/passwd`, `/etc/shadow`, a symlink
    pointing out of the folder) through a manifest someone published.
    """
    try:
        resolved, root = path.resolve(strict=True), root.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, on Python 3.11
        raise ArtifactError(f"The artifact {url} cannot be resolved: {exc}.") from None
    if not resolved.is_relative_to(root):
        raise ArtifactError(
            f"The artifact {url} leads outside the manifest's folder; the service reads local files only inside "
            f"the manifest folder holding the manifest that names them (symlinks resolved). Move the file there, "
            f"or serve it over https or s3 with a sha256."
        )
    return resolved


def pkg_path(url: str) -> Path:
    """The file a `pkg://package/path/inside` URL names, within the installed package, used in place."""
    parts = urlsplit(url)
    package = parts.netloc
    inside = PurePosixPath(parts.path.lstrip("/"))
    if not package or not inside.parts:
        raise ArtifactError(f"The artifact URL {url} is not of the form pkg://package/path/inside/package.")
    if ".." in inside.parts:
        raise ArtifactError(f"The artifact URL {url} uses '..'; a pkg: URL must stay inside its package.")
    # find_spec locates a top-level package without executing it: pkg://torch/... must not import torch.
    # For "a.b" it would import "a", so a dotted name is looked up as a top-level package plus folders.
    top_level, *subpackages = package.split(".")
    inside = PurePosixPath(*subpackages, *inside.parts)
    try:
        spec = importlib.util.find_spec(top_level)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        distribution = package.split(".")[0].replace("_", "-")
        raise ArtifactError(
            f"The artifact {url} needs the Python package '{package}', which is not installed "
            f"(try: pip install {distribution})."
        )
    locations = list(spec.submodule_search_locations or [])
    if not locations:
        raise ArtifactError(f"The artifact {url} names '{package}', which is a module, not a package with data files.")
    for location in locations:
        candidate = Path(location).joinpath(*inside.parts)
        if candidate.is_file():
            return candidate
    raise ArtifactError(
        f"The artifact {url} does not exist: the installed package '{package}' (at {locations[0]}) has no "
        f"file '{inside}'. The installed version may not ship it."
    )

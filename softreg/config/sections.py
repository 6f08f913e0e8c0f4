"""The resolved config: one frozen dataclass per section, and the `Config` that holds them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from softreg.train import Settings


@dataclass(frozen=True)
class DataConfig:
    source: str
    label: str | int | None
    test: float | str  # a fraction, or the path of a separate labelled file
    val: float
    split: str
    stratify: bool
    standardize: bool
    classes: list[object] | None
    delimiter: str | None
    header: bool | None = None
    features: list[str | int] | None = None
    exclude: list[str | int] | None = None
    id: str | int | None = None
    missing: str = "error"
    categorical: str | list[str | int] = "auto"
    encoding: str = "utf-8"
    cache: str | None = None  # a directory of shuffled shards that training streams from
    memory_budget: int | None = None  # bytes
    shards: int = 1  # row ranges of the cached training part: fixes the batch plan of the sharded engine
    storage_options: dict[str, Any] | None = None  # passed to fsspec for a source named by URL


@dataclass(frozen=True)
class ModelConfig:
    weight_decay: float
    fit_intercept: bool
    dtype: str
    loss: str = "cross_entropy"
    normalizer: str = "softmax"
    temperature: float = 1.0


@dataclass(frozen=True)
class OptimConfig:
    lr: float | str  # a number, or "auto" until a run resolves it (`Config.with_learning_rate`)
    batch_size: int
    epochs: int
    momentum: float
    nesterov: bool
    schedule: str
    step_size: int
    gamma: float
    decay: float
    early_stopping: dict[str, Any] | None  # {"patience", "min_delta"}, or None: disabled
    variance_reduction: str = "svrg"
    tol: float | None = 1e-4
    full_batch: str = "auto"


@dataclass(frozen=True)
class OutputConfig:
    dir: str | None
    plots: bool | list[str]
    eval_every: int | None
    checkpoint_every: int | str = "auto"  # a number, or "auto" until a run resolves it (`checkpoint_interval`)


ENGINES = ("numpy", "dask")


@dataclass(frozen=True)
class EngineConfig:
    kind: str = "numpy"  # or "dask": the shards' sums computed by Dask workers
    scheduler: str | None = None  # tcp://host:port, "local", or None: dask's own scheduler-address
    workers: int = 2
    worker_cache: str | None = None  # softreg ingest on dask: each worker's own shard directory (None: dask's)


@dataclass(frozen=True)
class Config:
    data: DataConfig
    model: ModelConfig
    optim: OptimConfig
    output: OutputConfig
    seed: int
    path: str | None = None  # the file it came from, for messages and relative paths
    engine: EngineConfig = EngineConfig()

    def training_settings(self) -> Settings:
        """The numbers `softreg.train.fit` needs, from the ``model`` and ``optim`` sections."""
        keys = {**vars(self.model), **vars(self.optim), "eval_every": self.output.eval_every}
        return Settings.from_keys(keys)

    def with_learning_rate(self, lr: float) -> Config:
        """This config with ``optim.lr`` set to ``lr`` (what a run saves once "auto" has chosen it)."""
        return dataclasses.replace(self, optim=dataclasses.replace(self.optim, lr=lr))

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain YAML-able data (the form saved with a run)."""
        sections = {name: vars(getattr(self, name)).copy() for name in ("data", "model", "optim", "output")}
        if self.data.storage_options is None:  # saved only when set: a run from a path saves what it always did
            del sections["data"]["storage_options"]
        return {**sections, "engine": vars(self.engine).copy(), "seed": self.seed}

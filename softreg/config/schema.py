"""The config's schema, declared once: section -> key -> (default, rule, help).

`softreg.config.resolve` checks a document against it; the estimator's parameters (`key_spec`)
and the sweep's grid keys are checked by the same rules.
"""

from __future__ import annotations

from softreg.config.rules import (
    REQUIRED,
    Spec,
    boolean,
    byte_size,
    categorical,
    choice,
    class_list,
    column_list,
    column_ref,
    count_or_auto,
    delimiter,
    early_stopping,
    encoding,
    fraction_or_path,
    learning_rate,
    normalizer,
    number,
    optional,
    plots,
    scheduler_address,
    storage_options,
    text,
)
from softreg.config.sections import ENGINES
from softreg.losses import LOSSES
from softreg.train.optim import SCHEDULES, VARIANCE_REDUCTION
from softreg.train.settings import AUTO, CERTIFIED_EPOCHS, UNCERTIFIED_EPOCHS

SCHEMA: dict[str, Spec | dict[str, Spec]] = {
    "data": {
        "source": (REQUIRED, text, "builtin:iris|digits|wine|breast_cancer, a .csv/.tsv/.npz/svmlight/Parquet path, "
                   "or a URL (s3://, gs://, abfs://, https://, file://) of delimited text or Parquet"),
        "label": (None, optional(column_ref), "label column name or 0-based index (default: the last column)"),
        "test": (0.2, fraction_or_path, "test fraction in [0, 1), or a path to a separate labelled file"),
        "val": (0.1, number(0.0, 1.0, max_open=True), "validation fraction of the training part (0 disables)"),
        "split": (
            "random",
            choice("random", "ordered"),
            "random (stratified if data.stratify) or ordered (test = last rows, val = last rows before)",
        ),
        "stratify": (True, boolean, "keep class proportions in the random splits"),
        "standardize": (True, boolean, "scale features by the training part's mean and standard deviation"),
        "classes": (None, optional(class_list), "train on this subset of labels only"),
        "delimiter": (None, delimiter, "field delimiter of delimited text (null: detect)"),
        "header": (
            None,
            optional(boolean),
            "whether delimited text starts with a header row (null: yes when a text cell of the first row sits "
            "over a numeric column, or over text of another length)",
        ),
        "features": (None, optional(column_list), "the feature columns, by name or index (default: all the others)"),
        "exclude": (None, optional(column_list), "columns that are not features (e.g. notes), by name or index"),
        "id": (None, optional(column_ref), "a row identifier: not a feature; predict copies it to its output"),
        "missing": (
            "error",
            choice("error", "drop", "mean", "median", "most_frequent"),
            "missing cells (empty, NA, NaN, ?): error, drop the row, or fill with the training part's statistic",
        ),
        "categorical": (
            "auto",
            categorical,
            "one-hot encoded columns: auto (the text columns), none, or a list; categories from the training part",
        ),
        "encoding": ("utf-8", encoding, "text encoding of delimited files (e.g. latin-1)"),
        "cache": (
            None,
            optional(text),
            "a directory for a shuffled on-disk copy of the data (softreg ingest builds it; train builds it when "
            "missing and rebuilds it when the source or data options change) that training streams from",
        ),
        "memory_budget": (
            None,
            optional(byte_size),
            "bytes of memory for the data, an integer or a size such as 512MB (null: half the available memory); "
            "train goes through a cache beside the run when the data do not fit, evaluate and predict read chunks "
            "that fit",
        ),
        "storage_options": (
            None,
            storage_options,
            "for a data.source (or data.test) given as a URL (s3://, gs://, abfs://, https://, file://): options "
            "passed to its fsspec filesystem, e.g. {endpoint_url: http://127.0.0.1:9000} or {anon: true}; "
            "credentials come from the environment, never from here",
        ),
        "shards": (
            1,
            number(1, integer=True),
            "row ranges of the cache's training part that each step takes batch_size / shards rows from; it fixes "
            "the batch plan, so the same shards give the same model on any engine and any number of workers "
            "(more than 1 needs data.cache)",
        ),
    },
    "model": {
        "weight_decay": (1e-4, number(0.0), "lambda in (lambda/2)*||W||^2; the intercept is not decayed"),
        "fit_intercept": (True, boolean, "learn one intercept per class"),
        "dtype": ("float64", choice("float64", "float32"), "floating-point precision of training"),
        "loss": (
            "cross_entropy",
            choice(*LOSSES),
            "cross_entropy (-log p_y), or squared_error (sum_k (p_k - [k = y])^2, the Brier score)",
        ),
        "normalizer": (
            "softmax",
            normalizer,
            "softmax, taylor ((1 + z + z^2/2) normalized) or spherical ((z^2 + eps) normalized)",
        ),
        "temperature": (1.0, number(0.0, min_open=True), "T > 0 in p = normalizer(z / T)"),
    },
    "optim": {
        "lr": (
            "auto",
            learning_rate,
            "base learning rate, or auto: from a curvature bound of the training data, the batch size and the "
            "momentum (the chosen number is printed and saved in the run's config.yaml)",
        ),
        "batch_size": (64, number(1, integer=True), "minibatch size"),
        "epochs": (
            "auto",
            count_or_auto,
            "the most passes over the training part (a run stops earlier at optim.tol), or auto: "
            f"{CERTIFIED_EPOCHS} where a certificate can stop the run after SVRG and full-batch steps, "
            f"{UNCERTIFIED_EPOCHS} otherwise (weight_decay 0, another loss or normalizer, tol null, or the sharded "
            "engine, whose plain minibatch steps a certificate may still stop)",
        ),
        "momentum": (0.9, number(0.0, 1.0, max_open=True), "heavy-ball momentum (0 disables)"),
        "nesterov": (False, boolean, "use Nesterov momentum"),
        "schedule": ("constant", choice(*SCHEDULES), "learning-rate schedule"),
        "step_size": (10, number(1, integer=True), "schedule=step: epochs between decays"),
        "gamma": (0.1, number(0.0, 1.0, min_open=True), "schedule=step: decay factor"),
        "decay": (1.0, number(0.0), "schedule=inverse_time: lr / (1 + decay * epoch)"),
        "early_stopping": (None, early_stopping, "false, or {patience, min_delta} on the validation loss"),
        "tol": (
            1e-4,
            optional(number(0.0, min_open=True)),
            "stop at the first epoch whose certified relative gap (J - J*) / J* is <= tol (optim.epochs is then "
            "the most); null: run all optim.epochs",
        ),
        "variance_reduction": (
            "auto",
            choice(AUTO, *VARIANCE_REDUCTION),
            "svrg: after a first plain epoch, each epoch ends with a full-data gradient that removes the next "
            "epoch's batch noise, so a constant lr converges (Johnson & Zhang 2013); none: plain minibatch "
            "gradients; auto: svrg, or none on the sharded engine (which sums plain minibatch gradients)",
        ),
        "full_batch": (
            "auto",
            choice("auto", "never"),
            "auto: once SVRG's epochs slow down (an epoch's decrease of J above 0.8 of the previous one's), each "
            "epoch is one step over all rows with Barzilai-Borwein rates under a non-monotone line search; "
            "never: minibatch epochs to the end",
        ),
    },
    "output": {
        "dir": (None, optional(text), "run directory (default: a fresh runs/NAME-TIMESTAMP)"),
        "plots": (True, plots, "true, false, or a list of plot names"),
        "eval_every": (
            None,
            optional(number(1, integer=True)),
            "epochs between full-data objective evaluations (null: adaptive, <10% of training time)",
        ),
        "checkpoint_every": (
            "auto",
            count_or_auto,
            "epochs between checkpoints that --resume continues from, or auto: as few epochs as keep their "
            "writing within 10% of training by a cost model of the data's size (Ctrl-C always saves the last epoch)",
        ),
    },
    "engine": {
        "kind": (
            "numpy",
            choice(*ENGINES),
            "numpy (this process) or dask: the shards' gradient sums computed by workers of a Dask cluster "
            "(pip install 'softreg[dask]')",
        ),
        "scheduler": (
            None,
            optional(scheduler_address),
            "engine.kind=dask: a scheduler address (tcp://host:8786), local (a cluster of engine.workers processes "
            "on this machine), or null (dask's scheduler-address config, e.g. DASK_SCHEDULER_ADDRESS)",
        ),
        "workers": (2, number(1, integer=True), "engine.kind=dask: the workers that hold the shards"),
        "worker_cache": (
            None,
            optional(text),
            "engine.kind=dask: where softreg ingest has each worker keep its own shards (a directory on each "
            "worker's own disk; relative to the config's folder); null: each worker's dask local directory "
            "(dask worker --local-directory; by default one it deletes when it stops)",
        ),
    },
    "seed": (0, number(0, integer=True), "fixes the split, the initialization and the batch order"),
}


def key_spec(section: str, key: str) -> Spec:
    """``(default, rule, help)`` of the config key ``section.key`` (a KeyError if there is none)."""
    spec = SCHEMA[section]
    if not isinstance(spec, dict):
        raise KeyError(f"{section} is a top-level key, not a section")
    return spec[key]

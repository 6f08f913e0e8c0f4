"""The run directory: atomic writes, a staging directory committed by one rename,
and saving/loading the model with everything it needs (classes, feature names,
the standardizer).

Its file names are `softreg.rundir.names` (``rundir.CONFIG``, ``rundir.METRICS``...), spelled
nowhere else; a finished run is written by `save_finished_run` only.

A run directory is built in a hidden sibling ``.NAME.staging-*`` and renamed onto
``NAME`` only when complete, so an interrupted run never leaves a model that loads.
Nothing is ever unpickled: arrays load with ``allow_pickle=False``.
"""

from softreg.rundir.artifacts import (
    FORMAT_VERSION,
    MODEL_ARRAYS,
    OUTPUT_FORMAT_VERSION,
    load_model,
    load_test_split,
    read_metrics,
    read_model_json,
    save_model,
    save_test_split,
)
from softreg.rundir.checkpoint import (
    CHECKPOINT_KEYS,
    HISTORY_FIELDS,
    load_checkpoint,
    read_history,
    save_checkpoint,
    write_history,
)
from softreg.rundir.directory import (
    LOCK_FILE,
    check_output_dir,
    claim,
    default_run_dir,
    foreign_entries,
    is_softreg_run,
    refuse_links,
    release,
    remove_stale_temporaries,
    staging_dir,
    write_marker,
)
from softreg.rundir.files import (
    atomic_open,
    finite,
    json_text,
    read_json_object,
    write_json,
    write_npz,
    write_text,
)
from softreg.rundir.finished import FinishedRun, save_finished_run
from softreg.rundir.names import (
    CHECKPOINT,
    CHECKPOINT_SECONDS,
    COMPARISON_REPORT,
    CONFIG,
    HISTORY,
    LOGISTIC_MODEL,
    METRICS,
    MODEL,
    MODEL_JSON,
    PLOTS,
    REPORT,
    RUN_FILES,
    RUN_MARKER,
    SOFTMAX_RUN,
    SPLIT,
    TEST_SPLIT,
)
from softreg.rundir.split import load_split, save_split

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_KEYS",
    "CHECKPOINT_SECONDS",
    "COMPARISON_REPORT",
    "CONFIG",
    "FORMAT_VERSION",
    "HISTORY",
    "HISTORY_FIELDS",
    "LOCK_FILE",
    "LOGISTIC_MODEL",
    "METRICS",
    "MODEL",
    "MODEL_ARRAYS",
    "MODEL_JSON",
    "OUTPUT_FORMAT_VERSION",
    "PLOTS",
    "REPORT",
    "RUN_FILES",
    "RUN_MARKER",
    "SOFTMAX_RUN",
    "SPLIT",
    "TEST_SPLIT",
    "FinishedRun",
    "atomic_open",
    "check_output_dir",
    "claim",
    "default_run_dir",
    "foreign_entries",
    "is_softreg_run",
    "refuse_links",
    "finite",
    "json_text",
    "load_checkpoint",
    "load_model",
    "load_split",
    "load_test_split",
    "read_history",
    "read_json_object",
    "read_metrics",
    "read_model_json",
    "release",
    "remove_stale_temporaries",
    "save_checkpoint",
    "save_finished_run",
    "save_model",
    "save_split",
    "save_test_split",
    "staging_dir",
    "write_history",
    "write_marker",
    "write_json",
    "write_npz",
    "write_text",
]

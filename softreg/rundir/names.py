"""The names of the files in a run directory: spelled here only, imported by everyone else.

A run directory (``softreg train``; the softmax side of ``compare-logistic --out``; the
estimator's ``save_run``) holds the marker, its config, the model (``model.npz`` written last:
its presence marks a finished run), the history, the metrics, the test split, which source
rows each part holds, checkpoints
while it trains, the plots, and the report once ``softreg report`` writes it.
"""

RUN_MARKER = ".softreg-run"  # written first: softreg made this directory
CONFIG = "config.yaml"  # the resolved config it was trained with
MODEL = "model.npz"  # coef, intercept, classes and the standardizer
MODEL_JSON = "model.json"  # what the arrays mean: classes, features, input columns, training summary
HISTORY = "history.csv"  # one row per epoch
METRICS = "metrics.json"  # the measures of the evaluated part
TEST_SPLIT = "test.npz"  # the test rows, raw, so that `evaluate` needs nothing else
SPLIT = "split.npz"  # train, val, test: each part's 0-based data-row indices into the source
CHECKPOINT = "checkpoint.npz"  # the training state `--resume` continues from
CHECKPOINT_SECONDS = "checkpoint-seconds.json"
PLOTS = "plots"  # the folder of figures
REPORT = "report.html"  # `softreg report`'s default output
COMPARISON_REPORT = "report.json"  # compare-logistic's numbers
SOFTMAX_RUN = "softmax"  # compare-logistic: its softmax model, a run directory of its own
LOGISTIC_MODEL = "logistic"  # compare-logistic: its logistic model

# What softreg writes into the directories it makes (runs, `evaluate --out`, `compare-logistic --out`):
# --force replaces a directory only when it holds the marker and nothing else than these.
RUN_FILES = frozenset({
    CONFIG, MODEL, MODEL_JSON, HISTORY, METRICS, TEST_SPLIT, SPLIT, CHECKPOINT, CHECKPOINT_SECONDS, REPORT,
    COMPARISON_REPORT,
})
RUN_FOLDERS = (PLOTS, SOFTMAX_RUN, LOGISTIC_MODEL)  # plots/*.png; a comparison's two models

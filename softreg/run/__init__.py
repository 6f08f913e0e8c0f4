"""A config trained into a run directory: what ``softreg train``, ``sweep`` and the Python
API's ``fit_config`` run.

Step by step: `prepare` (where the run goes, the data parts and their fingerprint) → `train`
(the staged config, `fit` with checkpoints) → `finish` (the model measured on its evaluation
part and saved by `softreg.rundir.save_finished_run`); `resume` continues a stopped run.
Nothing here prints: progress reaches callers through callbacks (`progress.epoch_line` is the
line they print).
"""

from softreg.run.finish import TrainOutcome, finish_run, score_part
from softreg.run.prepare import FINGERPRINT_ROWS, data_fingerprint, output_dir_for, prepare_for
from softreg.run.resume import RESUMABLE_OVERRIDES, resume_run
from softreg.run.train import train_run

__all__ = [
    "FINGERPRINT_ROWS",
    "RESUMABLE_OVERRIDES",
    "TrainOutcome",
    "data_fingerprint",
    "finish_run",
    "output_dir_for",
    "prepare_for",
    "resume_run",
    "score_part",
    "train_run",
]

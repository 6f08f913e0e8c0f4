"""Everything the user reads: live progress (`progress`), the texts and ``--json`` documents
of finished commands (`summaries`), and the HTML report page (`page`).

Only this package and `softreg.cli` write to stdout or stderr; the page is returned as text.
"""

from __future__ import annotations

from softreg.console.progress import Progress, bar_line, engine_lines
from softreg.console.summaries import (
    certificate_line,
    compare_logistic_report,
    interrupted_message,
    metrics_table,
    not_converged_line,
    print_json,
    sweep_line,
    sweep_summary,
    train_summary,
)

__all__ = [
    "Progress",
    "bar_line",
    "certificate_line",
    "compare_logistic_report",
    "engine_lines",
    "interrupted_message",
    "metrics_table",
    "not_converged_line",
    "print_json",
    "sweep_line",
    "sweep_summary",
    "train_summary",
]

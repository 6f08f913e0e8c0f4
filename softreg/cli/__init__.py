"""The command line: a click group over `softreg.commands` (one module per command).

This is the one place that maps exceptions to messages and exit codes. Heavy
modules (numpy, scikit-learn, matplotlib) are imported inside the commands so that
``softreg --help`` stays fast.
"""

# the commands register themselves on `main` when their modules load
from softreg.cli import export, runs, scoring, studies  # noqa: F401
from softreg.cli.group import handle_errors, main

__all__ = ["handle_errors", "main"]

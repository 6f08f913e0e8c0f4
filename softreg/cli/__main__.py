"""``python -m softreg.cli``: the same command line as ``softreg``."""

from softreg.cli import main

main(prog_name="softreg")

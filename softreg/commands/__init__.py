"""The commands, one module each: each orchestrates library calls (load, fit, evaluate,
save) and returns results; `softreg.cli` parses flags, prints and maps errors to exit codes."""

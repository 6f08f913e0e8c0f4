"""The package's version, in a module of its own: every layer may import it without importing
the package's top level (which reaches the estimator, and so everything)."""

__version__ = "0.1.0"

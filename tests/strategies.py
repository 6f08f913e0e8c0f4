"""Shared Hypothesis strategies and test helpers."""

import numpy as np
from click.testing import CliRunner
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def logits(draw, max_rows=6, max_classes=6, elements=finite):
    """(n, K) finite logits with 1 <= n, 2 <= K."""
    n_rows = draw(st.integers(1, max_rows))
    n_classes = draw(st.integers(2, max_classes))
    return draw(hnp.arrays(np.float64, (n_rows, n_classes), elements=elements))


@st.composite
def problems(draw, max_rows=12, max_features=5, max_classes=4):
    """A small random problem: X (n, d), y (n,) class indices, coef (K, d), intercept (K,)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_rows = draw(st.integers(1, max_rows))
    n_features = draw(st.integers(1, max_features))
    n_classes = draw(st.integers(2, max_classes))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
    X = rng.normal(size=(n_rows, n_features)) * scale
    y = rng.integers(0, n_classes, size=n_rows)
    coef = rng.normal(size=(n_classes, n_features))
    intercept = rng.normal(size=n_classes)
    return X, y, coef, intercept


cell_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8)


def linear_problem(n_samples=240, n_features=6, n_classes=4, seed=0, dtype=np.float64):
    """X (n, d) of the given dtype, Gumbel-noise labels of a random linear map, and small coef and intercept."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)).astype(dtype)
    true_coef = rng.normal(size=(n_classes, n_features))
    y = (X @ true_coef.T + rng.gumbel(size=(n_samples, n_classes))).argmax(axis=1)
    coef = (0.3 * rng.normal(size=(n_classes, n_features))).astype(dtype)
    intercept = (0.3 * rng.normal(size=n_classes)).astype(dtype)
    return X, y, coef, intercept


def default_sigint() -> None:
    """For ``Popen(preexec_fn=...)``: a child that Ctrl-C interrupts even when the test runner was
    started with SIGINT ignored (as a background job of a shell without job control is); Python
    installs its KeyboardInterrupt handler only when SIGINT is not ignored at startup."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(*args):
    """``softreg ARGS...`` in process: (exit code, stdout, stderr), exceptions not caught."""
    from softreg.cli import main

    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr

"""The contenders, each run by ``run.py`` in a fresh process of its own:

    python benchmarks/contenders.py CONTENDER WORKLOAD_FOLDER SETTINGS_JSON

The process loads the cached arrays, imports what the contender needs, resets the peak
resident memory, trains, and prints one line ``RESULT {json}``: the seconds of every
epoch (or L-BFGS iteration), the objective after each, the test accuracy of the final
weights and the peak memory above the loaded data. Objectives are computed in float64
after training (outside the timed region) from copies of the weights, except softreg's,
which are the ones its own loop logs (the time that logging costs is part of its epochs).
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads  # noqa: E402  (a script beside this one)


def reference_sgd(X, y, n_classes, weight_decay, lr, batch_size, epochs, rng):
    """The simplest correct vectorized minibatch SGD on J: the floor any numpy loop should reach.
    Yields (coef, intercept) after every epoch."""
    n_samples, n_features = X.shape
    coef, intercept = np.zeros((n_classes, n_features), X.dtype), np.zeros(n_classes, X.dtype)
    for _ in range(epochs):
        order = rng.permutation(n_samples)
        for start in range(0, n_samples, batch_size):
            index = order[start:start + batch_size]
            X_batch, y_batch = X[index], y[index]
            logits = X_batch @ coef.T + intercept  # (B, K)
            logits -= logits.max(axis=1, keepdims=True)
            proba = np.exp(logits)
            proba /= proba.sum(axis=1, keepdims=True)
            proba[np.arange(len(index)), y_batch] -= 1.0
            proba /= len(index)  # dJ/dlogits
            coef -= lr * (proba.T @ X_batch + weight_decay * coef)
            intercept -= lr * proba.sum(axis=0)
        yield coef, intercept


def torch_sgd(X, y, n_classes, weight_decay, lr, batch_size, epochs, seed):
    """The same loop as users write it in PyTorch: nn.Linear, cross_entropy, optim.SGD with
    weight decay on the weight only. Yields (coef, intercept) after every epoch."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count() or 1)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)  # shares memory with the arrays
    model = torch.nn.Linear(X.shape[1], n_classes, dtype=X_t.dtype)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    optimizer = torch.optim.SGD(
        [{"params": [model.weight], "weight_decay": weight_decay}, {"params": [model.bias], "weight_decay": 0.0}], lr=lr
    )
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(X.shape[0], generator=generator)
        for start in range(0, X.shape[0], batch_size):
            index = order[start:start + batch_size]
            loss = torch.nn.functional.cross_entropy(model(X_t[index]), y_t[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        yield model.weight.detach().numpy(), model.bias.detach().numpy()


def sgd_classifier(X, y, n_classes, weight_decay, epochs, seed):
    """scikit-learn's SGDClassifier(loss="log_loss"), one partial_fit (one epoch) at a time.
    One-vs-rest binary models updated one sample at a time: another objective than J."""
    from sklearn.linear_model import SGDClassifier

    model = SGDClassifier(loss="log_loss", alpha=weight_decay, random_state=seed)
    classes = np.arange(n_classes)
    for _ in range(epochs):
        model.partial_fit(X, y, classes=classes)
        yield model.coef_, model.intercept_


def floor_kernel(X, n_classes, batch_size, epochs, rng):
    """What an SGD epoch cannot go below: the same steps over batches gathered before the clock
    starts (contiguous, in the order of one permutation), doing only the two products and the
    exponentials of each step: no gather, no update, no Python beyond the loop. Returns a
    generator of (coef, intercept) after each epoch; the batches are gathered at once."""
    n_samples, n_features = X.shape
    gathered = X[rng.permutation(n_samples)]
    coef = (0.01 * np.random.default_rng(1).standard_normal((n_classes, n_features))).astype(X.dtype)
    intercept = np.zeros(n_classes, X.dtype)
    batches = [gathered[start:start + batch_size] for start in range(0, n_samples, batch_size)]
    outputs = {len(batch): (np.empty((len(batch), n_classes), X.dtype), np.empty((n_classes, n_features), X.dtype))
               for batch in batches}

    def run():
        for _ in range(epochs):
            for batch in batches:
                logits, gradient = outputs[len(batch)]
                np.matmul(batch, coef.T, out=logits)
                np.exp(logits, out=logits)
                np.matmul(logits.T, batch, out=gradient)
            yield coef, intercept

    return run()


def epoch_breakdown(X, y, n_classes, weight_decay, batch_size, epochs, seed):
    """softreg's plain-SGD epoch built up from the library's own pieces (the library is not
    instrumented), each pass timed over a whole epoch: the gather alone (`ArrayData.minibatches`),
    then with the gradient (`PlainGradient.batch`), then with the update (`Schedule.rate`,
    `SGD.step`); one full-data evaluation (`evaluate_objective`); and the floor kernel. Each
    piece's cost is its increment over the pass before, so that a batch left in cache by the
    gather is counted as it is in training. Rounds alternate the passes so that load on the
    machine hits all of them alike; returns the median seconds of each."""
    from softreg.train import ArrayData, Settings, evaluate_objective, gradients
    from softreg.train.optim import SGD

    data = ArrayData(X, y)
    n_samples, n_features = X.shape
    settings = Settings(weight_decay=weight_decay, lr=0.1, momentum=0.0, batch_size=batch_size)
    gradient = gradients.PlainGradient(n_classes, n_features, n_samples, X.dtype, batch_size, weight_decay, True)
    weights = np.zeros(n_classes * n_features + n_classes, X.dtype)
    coef = weights[: n_classes * n_features].reshape(n_classes, n_features)
    intercept = weights[n_classes * n_features:]
    rng = np.random.default_rng(seed)
    schedule, sgd = settings.schedule_for(n_samples), SGD(momentum=0.0)
    floor = floor_kernel(X, n_classes, batch_size, 10**9, np.random.default_rng(seed))

    def gather():
        for _ in data.minibatches(batch_size, rng):
            pass

    def with_gradient():
        for X_batch, y_batch, _ in data.minibatches(batch_size, rng):
            gradient.batch(coef, intercept, X_batch, y_batch, None)

    def with_update():
        for step, (X_batch, y_batch, _) in enumerate(data.minibatches(batch_size, rng)):
            gradient.batch(coef, intercept, X_batch, y_batch, None)
            sgd.step([weights], [gradient.work.gradient], schedule.rate(1, step))

    def evaluation():
        evaluate_objective(coef, intercept, data, settings, gradient.full_pass_work)

    passes = {"floor": lambda: next(floor), "gather": gather, "gather+gradient": with_gradient,
              "gather+gradient+update": with_update, "evaluation": evaluation}
    seconds = {name: [] for name in passes}
    for _ in range(epochs):
        for name, run in passes.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    return {name: float(np.median(values)) for name, values in seconds.items()}


def timed_epochs(epochs):
    """Run an epoch generator; return the seconds of each epoch and copies of the weights after
    it (copying is not timed)."""
    seconds, iterates = [], []
    start = time.perf_counter()
    for coef, intercept in epochs:
        seconds.append(time.perf_counter() - start)
        iterates.append((np.array(coef, copy=True), np.array(intercept, copy=True)))
        start = time.perf_counter()
    return seconds, iterates


def run_softreg(data, settings):
    from softreg.config import load_config
    from softreg.prepare.data import random_streams
    from softreg.train import Settings, fit

    X, y = data[0], data[1]
    if "config_file" in settings:
        config = load_config(workloads.REPO / settings["config_file"], settings.get("overrides", ()))
        if config.model.dtype != str(X.dtype):
            raise SystemExit(f"config dtype {config.model.dtype} differs from the workload's {X.dtype}")
        training, seed = config.training_settings(), config.seed
    else:
        optim = settings["optim"]
        training = Settings(weight_decay=settings["weight_decay"], batch_size=settings["batch_size"], **optim)
        seed = 0
    batch_rng = random_streams(seed).batches
    mark_start()
    result = fit((X, y), settings["n_classes"], training, batch_rng)
    peak = peak_above_start()
    seconds = [record.seconds for record in result.history]
    logged = [record.objective for record in result.history]
    evaluated = [record.objective is not None for record in result.history]
    return {
        "epoch_seconds": seconds,
        "curve": [(t, f) for t, f in zip(np.cumsum(seconds).tolist(), logged, strict=True) if f is not None],
        "final": (result.coef, result.intercept),
        "peak_bytes": peak,
        "fit_seconds": result.seconds,
        "evaluated": evaluated,
        "logging_share": logging_share(seconds, evaluated),
        "optim": {key: value for key, value in vars(training).items() if value is not None},
        "lr": result.lr,
    }


def logging_share(seconds, evaluated):
    """Share of training time spent on the full-data evaluations: each evaluated epoch's excess
    over the median epoch that was not evaluated (None when every epoch was evaluated)."""
    plain = [s for s, e in zip(seconds, evaluated, strict=True) if not e]
    if not plain:
        return None
    baseline = float(np.median(plain))
    return sum(max(s - baseline, 0.0) for s, e in zip(seconds, evaluated, strict=True) if e) / sum(seconds)


def run_epochs(make_epochs):
    def run(data, settings):
        mark_start()
        seconds, iterates = timed_epochs(make_epochs(data, settings))
        peak = peak_above_start()
        X, y = data[0], data[1]
        elapsed = np.cumsum(seconds).tolist()
        curve = [
            (t, workloads.objective(coef, intercept, X, y))
            for t, (coef, intercept) in zip(elapsed, iterates, strict=True)
        ]
        return {"epoch_seconds": seconds, "curve": curve, "final": iterates[-1], "peak_bytes": peak}

    return run


def run_floor(data, settings):
    """The floor kernel's epochs, and softreg's plain-SGD epoch in parts (`epoch_breakdown`)."""
    X, y = data[0], data[1]
    epochs = floor_kernel(X, settings["n_classes"], settings["batch_size"], settings["epochs"],
                          np.random.default_rng(settings["seed"]))
    mark_start()
    seconds, _ = timed_epochs(epochs)
    peak = peak_above_start()
    breakdown = epoch_breakdown(X, y, settings["n_classes"], settings["weight_decay"], settings["batch_size"],
                                settings["epochs"], settings["seed"])
    zero = (np.zeros((settings["n_classes"], X.shape[1])), np.zeros(settings["n_classes"]))
    return {"epoch_seconds": seconds, "curve": [], "final": zero, "peak_bytes": peak, "breakdown": breakdown,
            "steps": -(-X.shape[0] // settings["batch_size"])}


def run_lbfgs(data, settings):
    """LogisticRegression(lbfgs) with C = 1/(n lambda), which minimizes J (n_classes >= 3). Every
    L-BFGS iterate is recorded through scipy's callback; the seconds spent in the callback
    (copying the iterate, checking the gap to stop early) are excluded from the times."""
    import warnings

    from scipy import optimize
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import ThreadpoolController

    X, y = data[0], data[1]
    n_samples, n_features = X.shape
    n_classes, f_star, stop_gap = settings["n_classes"], settings["f_star"], settings["stop_gap"]
    times, iterates = [], []
    excluded = [0.0]
    minimize = optimize.minimize

    def record(xk):
        entered = time.perf_counter()
        times.append(entered - started - excluded[0])
        weights = np.reshape(xk, (n_classes, n_features + 1), order="F")  # sklearn's layout: intercept last
        coef, intercept = weights[:, :n_features].copy(), weights[:, n_features].copy()
        iterates.append((coef, intercept))
        gap = (workloads.objective(coef, intercept, X, y, chunk_rows=512) - f_star) / abs(f_star)
        excluded[0] += time.perf_counter() - entered
        if gap <= stop_gap:
            raise StopIteration

    def recording_minimize(*args, **kwargs):
        kwargs["callback"] = record
        return minimize(*args, **kwargs)

    optimize.minimize = recording_minimize
    controller = ThreadpoolController()
    scipy_pool = [lib.filepath for lib in controller.lib_controllers
                  if lib.user_api == "blas" and {"scipy", "scipy.libs"} & set(Path(lib.filepath).parts)]
    model = LogisticRegression(C=1.0 / (n_samples * settings["weight_decay"]), tol=1e-10, max_iter=settings["max_iter"])
    mark_start()
    with controller.select(filepath=scipy_pool).limit(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning when stopped at the gap
        started = time.perf_counter()
        model.fit(X, y)
        total = time.perf_counter() - started - excluded[0]
    peak = peak_above_start()
    final_coef, final_intercept = model.coef_, model.intercept_
    if not np.allclose(final_coef, iterates[-1][0]) or not np.allclose(final_intercept, iterates[-1][1]):
        raise SystemExit("the recorded L-BFGS iterates do not match the fitted model's layout")
    seconds = np.diff([0.0, *times]).tolist()
    curve = [
        (t, workloads.objective(coef, intercept, X, y)) for t, (coef, intercept) in zip(times, iterates, strict=True)
    ]
    return {
        "epoch_seconds": seconds,
        "curve": curve,
        "final": (final_coef, final_intercept),
        "peak_bytes": peak,
        "fit_seconds": total,
        "iterations": len(iterates),
        "scipy_pool_limited": bool(scipy_pool),
    }


CONTENDERS = {
    "softreg": run_softreg,
    "reference": run_epochs(lambda data, s: reference_sgd(
        data[0], data[1], s["n_classes"], s["weight_decay"], s["lr"], s["batch_size"], s["epochs"],
        np.random.default_rng(s["seed"]))),
    "torch": run_epochs(lambda data, s: torch_sgd(
        data[0], data[1], s["n_classes"], s["weight_decay"], s["lr"], s["batch_size"], s["epochs"], s["seed"])),
    "sgdclassifier": run_epochs(lambda data, s: sgd_classifier(
        data[0], data[1], s["n_classes"], s["weight_decay"], s["epochs"], s["seed"])),
    "lbfgs": run_lbfgs,
    "floor": run_floor,
}
IMPORTS = {  # imported before the memory baseline, so that only training counts
    "softreg": ["softreg.train", "softreg.config"],
    "reference": [],
    "torch": ["torch"],
    "sgdclassifier": ["sklearn.linear_model"],
    "lbfgs": ["sklearn.linear_model", "scipy.optimize", "threadpoolctl"],
    "floor": ["softreg.train"],
}


# -- peak resident memory above a baseline (Linux: /proc/self/clear_refs resets the peak)

_baseline = {}


def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def mark_start():
    """Reset the peak resident size to the current one and remember it as the baseline."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        _baseline.update(rss=_status_kib("VmRSS"), exact=True)
    except OSError:  # no /proc: the lifetime peak, which includes loading (an upper bound)
        import resource

        _baseline.update(rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, exact=False)


def peak_above_start():
    try:
        peak = _status_kib("VmHWM") if _baseline["exact"] else None
    except OSError:
        peak = None
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(peak - _baseline["rss"], 0) * 1024


def warm_up(name, X):
    """Matrix products of the training shapes first, both ways round, so that the BLAS
    library's one-time work buffers count as loaded, like the imports, not as training memory."""
    block = np.ones((2048, X.shape[1]), X.dtype)
    (block @ np.ones((X.shape[1], 32), X.dtype)).T @ block
    if name == "torch":
        import torch

        block = torch.from_numpy(block)
        (block @ torch.ones(X.shape[1], 32, dtype=block.dtype)).T @ block


def main(argv):
    name, folder, settings = argv[1], argv[2], json.loads(argv[3])
    import importlib

    for module in IMPORTS[name]:
        importlib.import_module(module)
    data = workloads.load(folder)
    warm_up(name, data[0])
    outcome = CONTENDERS[name](data, settings)
    coef, intercept = outcome.pop("final")
    outcome["test_accuracy"] = workloads.accuracy(coef, intercept, data[2], data[3])
    outcome["final_objective"] = workloads.objective(coef, intercept, data[0], data[1])
    outcome["peak_exact"] = _baseline.get("exact", False)
    print("RESULT " + json.dumps(outcome, default=float))


if __name__ == "__main__":
    main(sys.argv)

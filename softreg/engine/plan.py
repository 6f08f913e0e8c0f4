"""The batch plan of sharded training: which rows each step takes, as a pure function.

The training part's ``n`` rows are cut into ``S`` shards, the row ranges
``[s n / S, (s + 1) n / S)`` (the cache's rows are a uniform random permutation already).
Each epoch draws one key from the run's batch stream; shard ``s`` permutes its rows with a
generator seeded by (key, s), and step ``t`` takes rows ``[t B/S, (t + 1) B/S)`` of that
permutation from every shard: global batch ``t`` is their concatenation, ``B`` rows (the
last step of an epoch fewer). The plan depends on the seed, the epoch, ``S`` and ``B``
only — not on where the shards are or how many workers hold them — and a shard computes
its part of a step from (key, t) alone, so no index array travels.

With ``S`` dividing ``B``, the largest shard needs exactly ``ceil(n / B)`` steps (the
schedule's steps per epoch); a smaller one may run out a step earlier and then adds nothing.
"""

from __future__ import annotations

import math

import numpy as np

KEY_BOUND = 2**63  # epoch keys are drawn from [0, KEY_BOUND)


def shard_ranges(n_samples: int, n_shards: int) -> list[tuple[int, int]]:
    """The ``n_shards`` row ranges ``(start, stop)`` of ``n_samples`` rows, sizes differing by one at most."""
    return [(shard * n_samples // n_shards, (shard + 1) * n_samples // n_shards) for shard in range(n_shards)]


def rows_per_step(batch_size: int, n_shards: int) -> int:
    """Rows each shard adds to a step: ``batch_size / n_shards`` (the config makes it a whole number)."""
    if batch_size % n_shards:
        raise ValueError(f"batch size {batch_size} is not a multiple of the {n_shards} shards")
    return batch_size // n_shards


def steps_per_epoch(n_samples: int, batch_size: int) -> int:
    return math.ceil(n_samples / batch_size)


def epoch_key(rng: np.random.Generator) -> int:
    """One draw of the batch stream: the key of an epoch's permutations (checkpointed with the stream)."""
    return int(rng.integers(KEY_BOUND))


def shard_order(key: int, shard: int, n_rows: int) -> np.ndarray:
    """Shard ``shard``'s rows (0-based within the shard) in the order of the epoch keyed ``key``."""
    return np.random.default_rng((key, shard)).permutation(n_rows)


def step_rows(order: np.ndarray, step: int, rows: int) -> np.ndarray:
    """The rows (within the shard) that step ``step`` takes: ``rows`` of ``order`` (fewer, or none, at the end)."""
    return order[step * rows:(step + 1) * rows]

"""How a default run finishes: full-batch steps with Barzilai-Borwein rates, once SVRG slows.

SVRG's minibatch epochs make fast progress while the objective is well conditioned near the
iterate; on nearly separable tables at small lambda (condition numbers of 1e4 to 1e6) each
epoch then gains less than the one before, and the certificate asks for a gap of 1e-6 or less.
From there a run of ``optim.full_batch: auto`` takes one step over all rows per epoch,

    x' = x - eta g(x),    g = grad J over every row (the intercept's part 0 when it is not fitted),

with eta alternating between the two Barzilai-Borwein rates of the last step
(s = x' - x, u = g(x') - g(x); Barzilai & Borwein 1988, alternated as in Dai & Fletcher 2005):

    eta_1 = s.s / s.u   (even steps),    eta_2 = s.u / u.u   (odd steps),

both inverse curvatures of J along s, halved until the non-monotone Armijo condition of
Grippo, Lampariello & Lucidi (1986) holds:

    J(x') <= max(J of the last MEMORY iterates) - ARMIJO eta ||g||^2.

The halving makes every rate safe whatever the data's scale (no step can make J exceed the
largest of the recent values), and the method converges on any smooth convex J (Raydan 1997).
Each step reads the rows once (a halving once more), as the certificate's passes do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

MEMORY = 10  # recent objectives the non-monotone condition compares with
ARMIJO = 1e-4  # sufficient decrease, relative to eta ||g||^2
MAX_HALVINGS = 60  # a rate halved this often is below any rounding: the step is not taken
SLOWER = 0.8  # SVRG hands over when an epoch's decrease of J exceeds this share of the previous one's

Evaluate = Callable[[np.ndarray], tuple[float, float, np.ndarray]]  # flat weights -> (data loss, J, grad J)


def should_switch(objectives: list[float]) -> bool:
    """Whether SVRG should hand over to full-batch steps, from its epochs' objectives so far.

    objectives : J at the end of each SVRG epoch, oldest first. True once the last epoch's
    decrease is more than SLOWER times the one before it (SVRG's linear progress has slowed to a
    few percent of the remaining decrease per epoch), or J rose.
    """
    if len(objectives) < 3:
        return False
    before, last = objectives[-3] - objectives[-2], objectives[-2] - objectives[-1]
    return last < 0.0 or last > SLOWER * before


class FullBatchSteps:
    """The full-batch phase's state: the next step's rate, the step count and the recent objectives.

    `state` and `restore` carry it through a checkpoint as plain numbers, so that a resumed run
    takes the same steps bit for bit (the gradient at the weights is recomputed exactly).
    """

    def __init__(self, rate: float, objective: float) -> None:
        self.rate = rate
        self.last_rate = rate  # the rate the last step took (after any halving)
        self.steps = 0
        self.recent = [objective]

    def step(
        self, weights: np.ndarray, gradient: np.ndarray, evaluate: Evaluate
    ) -> tuple[float, float, np.ndarray] | None:
        """One step from ``weights`` (flat, updated in place) along ``-gradient``.

        Returns (data loss, J, grad J) at the new weights, or None when no halving of the rate
        decreased J (the weights are then at the optimum to rounding and stay).
        """
        reference = max(self.recent)
        squared = float(gradient @ gradient)
        rate = self.rate
        for _ in range(MAX_HALVINGS):
            trial = weights - rate * gradient
            data_loss, objective, new_gradient = evaluate(trial)
            if math.isfinite(objective) and objective <= reference - ARMIJO * rate * squared:
                break
            rate /= 2.0
        else:
            return None
        self.last_rate = rate
        step, change = trial - weights, new_gradient - gradient
        curvature = float(step @ change)
        if curvature > 0.0:  # J is convex: s.u > 0 unless the step was at rounding level
            self.rate = float(step @ step) / curvature if self.steps % 2 == 0 else curvature / float(change @ change)
        else:
            self.rate = 2.0 * rate
        self.steps += 1
        self.recent = [*self.recent, objective][-MEMORY:]
        weights[...] = trial
        return data_loss, objective, new_gradient

    def state(self) -> dict[str, Any]:
        return {"rate": self.rate, "steps": self.steps, "recent": list(self.recent)}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> FullBatchSteps:
        steps = cls(float(state["rate"]), 0.0)
        steps.steps, steps.recent = int(state["steps"]), [float(value) for value in state["recent"]]
        return steps

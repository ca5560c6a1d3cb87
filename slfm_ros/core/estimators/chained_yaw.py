"""A large camera turn measured as the sum of the small turns between frames of a sweep.

Two views turned 60 deg or more apart share little or nothing at a 60 deg field of view, so no
matcher can measure their turn directly; the frames a camera records while it turns from one
to the other each overlap their neighbours, and the turns between neighbours add up to the
whole turn. This is how a moving observer measures its own large turns without any label.
A step that the estimator declines makes the whole chain invalid: a missing step cannot be
guessed, and a chain with a wrong step is worse than no measurement. A wrong step that the
estimator does not decline (a repeated texture, a moving object) is caught by a loop check:
the same turn measured again over every other frame, with longer steps, must agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slfm_ros.core.estimators.base import VisualEstimator


@dataclass(frozen=True)
class ChainedTurn:
    """The turn from the first frame to the last (radians, REP-103: + left) and its steps."""

    angle: float
    steps: tuple[float, ...]
    valid: bool
    reason: str = ""


def chained_turn(
    estimator: VisualEstimator,
    frames: Sequence[npt.NDArray[np.uint8]],
    check_tolerance: float | None = None,
) -> ChainedTurn:
    """Sum of ``estimator``'s turns between consecutive ``frames`` (at least two).

    check_tolerance: radians; when given (and there are at least three frames), the turn is
    measured a second time over every other frame, and the chain is declined when the two
    differ by more than this.
    """
    if len(frames) < 2:
        raise ValueError(f"a chain needs at least two frames, got {len(frames)}")
    chain = _sum_of_steps(estimator, frames)
    if not chain.valid or check_tolerance is None or len(frames) < 3:
        return chain
    skipping = list(frames[::2])
    if len(frames) % 2 == 0:  # every other frame, ending on the last one
        skipping.append(frames[-1])
    check = _sum_of_steps(estimator, skipping)
    if not check.valid:
        return ChainedTurn(float("nan"), chain.steps, False, f"loop check: {check.reason}")
    gap = abs(chain.angle - check.angle)
    if gap > check_tolerance:
        reason = (
            f"loop check: the chain says {np.degrees(chain.angle):.2f} deg and every other "
            f"frame {np.degrees(check.angle):.2f} deg"
        )
        return ChainedTurn(float("nan"), chain.steps, False, reason)
    return chain


def _sum_of_steps(
    estimator: VisualEstimator, frames: Sequence[npt.NDArray[np.uint8]]
) -> ChainedTurn:
    steps: list[float] = []
    for k in range(len(frames) - 1):
        estimate = estimator.estimate(frames[k], frames[k + 1])
        if not estimate.valid:
            reason = f"step {k + 1} of {len(frames) - 1} declined: {estimate.reason}"
            return ChainedTurn(float("nan"), tuple(steps), False, reason)
        steps.append(float(estimate.angle))
    return ChainedTurn(float(np.sum(steps)), tuple(steps), True)

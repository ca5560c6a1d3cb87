"""Camera yaw integration over a chain of keyframes.

Each update measures theta = yaw(image) - yaw(keyframe) with a visual estimator, so the
integrated yaw is yaw(keyframe) + theta: the error grows by one estimate per keyframe, not per
image. An image at least ``keyframe_interval_s`` younger than the keyframe becomes the next
keyframe. The yaw rate is the change of integrated yaw over about one keyframe interval.

If the estimator declines (too few matches) for longer than two keyframe intervals, tracking
is re-anchored at the current image with the last known yaw and a wide variance, and a WARN
event says so: the integrated yaw may jump there.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from slfm_ros.core.estimators.base import (
    UNINFORMATIVE_VARIANCE_RAD2,
    AngleEstimate,
    VisualEstimator,
)
from slfm_ros.core.events import PipelineEvent
from slfm_ros.core.streaming.image_buffer import StampedImage

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class YawResult:
    """Camera yaw measured for one window.

    relative:            theta from the keyframe to the image (radians, left positive).
    keyframe_ns, image_ns: capture times of the pair.
    integrated:          yaw of the image relative to the first keyframe (radians, not wrapped);
                         None when the estimator declined.
    integrated_variance: rad^2, grows along the keyframe chain.
    rate:                yaw rate (rad/s) over about one keyframe interval; None when unknown.
    rate_variance:       (rad/s)^2.
    """

    relative: AngleEstimate
    keyframe_ns: int
    image_ns: int
    integrated: float | None
    integrated_variance: float
    rate: float | None
    rate_variance: float


@dataclass
class _Keyframe:
    frame: StampedImage
    yaw: float
    variance: float


class KeyframeYawTracker:
    """Integrates camera yaw from successive images (see module doc)."""

    def __init__(self, estimator: VisualEstimator, keyframe_interval_s: float) -> None:
        self.estimator = estimator
        self._interval_ns = int(round(keyframe_interval_s * _NS_PER_S))
        self._keyframe: _Keyframe | None = None
        self._last_image_ns: int | None = None
        self._history: deque[tuple[int, float, float]] = deque()  # (stamp, yaw, variance)

    def reset(self) -> None:
        self._keyframe = None
        self._last_image_ns = None
        self._history.clear()

    def update(self, frame: StampedImage) -> tuple[YawResult | None, list[PipelineEvent]]:
        """Measure ``frame`` against the keyframe.

        Returns (None, []) when ``frame`` was already measured, or when it is the first image
        (it becomes the keyframe at yaw 0).
        """
        if self._last_image_ns is not None and frame.stamp_ns <= self._last_image_ns:
            return None, []
        self._last_image_ns = frame.stamp_ns
        kf = self._keyframe
        if kf is None:
            self._keyframe = _Keyframe(frame, 0.0, 0.0)
            self._history.append((frame.stamp_ns, 0.0, 0.0))
            return None, []

        theta = self.estimator.estimate(kf.frame.image, frame.image)
        span_ns = frame.stamp_ns - kf.frame.stamp_ns
        if not theta.valid or not math.isfinite(theta.angle):
            return self._declined(theta, frame, span_ns)

        yaw = kf.yaw + theta.angle
        variance = kf.variance + theta.variance
        rate, rate_var = self._rate(frame.stamp_ns, yaw, theta, span_ns)
        self._history.append((frame.stamp_ns, yaw, variance))
        while self._history and self._history[0][0] < frame.stamp_ns - 2 * self._interval_ns:
            self._history.popleft()
        if span_ns >= self._interval_ns:
            self._keyframe = _Keyframe(frame, yaw, variance)
        result = YawResult(
            relative=theta,
            keyframe_ns=kf.frame.stamp_ns,
            image_ns=frame.stamp_ns,
            integrated=yaw,
            integrated_variance=variance,
            rate=rate,
            rate_variance=rate_var,
        )
        return result, []

    def _rate(
        self, stamp_ns: int, yaw: float, theta: AngleEstimate, span_ns: int
    ) -> tuple[float, float]:
        # Reference: the history entry closest to one keyframe interval ago.
        target = stamp_ns - self._interval_ns
        ref = min(self._history, key=lambda h: abs(h[0] - target))
        dt = (stamp_ns - ref[0]) / _NS_PER_S
        if dt <= 0:
            dt = span_ns / _NS_PER_S
            return theta.angle / dt, theta.variance / dt**2
        return (yaw - ref[1]) / dt, 2.0 * theta.variance / dt**2

    def _declined(
        self, theta: AngleEstimate, frame: StampedImage, span_ns: int
    ) -> tuple[YawResult, list[PipelineEvent]]:
        kf = self._keyframe
        assert kf is not None
        events: list[PipelineEvent] = []
        if span_ns > 2 * self._interval_ns:
            last_yaw = self._history[-1][1] if self._history else kf.yaw
            last_var = self._history[-1][2] if self._history else kf.variance
            self._keyframe = _Keyframe(frame, last_yaw, last_var + UNINFORMATIVE_VARIANCE_RAD2)
            self._history.clear()
            self._history.append((frame.stamp_ns, last_yaw, self._keyframe.variance))
            events.append(
                PipelineEvent.warn(
                    "estimator",
                    "visual_tracking_lost",
                    f"camera yaw: no valid estimate for {span_ns / _NS_PER_S:.2f} s "
                    f"({theta.reason or 'estimator declined'}); re-anchored at the current "
                    "image, integrated yaw may jump",
                )
            )
        result = YawResult(
            relative=theta,
            keyframe_ns=kf.frame.stamp_ns,
            image_ns=frame.stamp_ns,
            integrated=None,
            integrated_variance=UNINFORMATIVE_VARIANCE_RAD2,
            rate=None,
            rate_variance=float("inf"),
        )
        return result, events

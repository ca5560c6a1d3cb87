"""Timestamped image buffer of the streaming pipeline.

Images are kept in stamp order; an image older than (or as old as) the newest one held is
dropped and reported, so the keyframe chain only ever moves forward in time. A jump back by
more than the buffer's horizon is a restarted clock (bag loop): the buffer starts over.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slfm_ros.core.events import PipelineEvent

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class StampedImage:
    """(H, W, 3) uint8 RGB image with the capture time of its exposure (ns)."""

    stamp_ns: int
    image: npt.NDArray[np.uint8]


class TimedImageBuffer:
    """The images of the last ``horizon_s`` seconds (behind the newest), in stamp order.

    Safe for one writer and one reader thread (every method holds an internal lock).
    """

    def __init__(self, horizon_s: float) -> None:
        self._horizon_ns = int(round(horizon_s * _NS_PER_S))
        self._stamps: list[int] = []
        self._images: list[StampedImage] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._images)

    @property
    def newest_ns(self) -> int | None:
        with self._lock:
            return self._stamps[-1] if self._stamps else None

    def clear(self) -> None:
        with self._lock:
            self._stamps.clear()
            self._images.clear()

    def push(self, image: npt.NDArray[np.uint8], stamp_ns: int) -> list[PipelineEvent]:
        """Add an image; returns a WARN event (and drops the image) when it is out of order."""
        with self._lock:
            return self._push(image, int(stamp_ns))

    def _push(self, image: npt.NDArray[np.uint8], stamp_ns: int) -> list[PipelineEvent]:
        newest = self._stamps[-1] if self._stamps else None
        if newest is not None and stamp_ns < newest - self._horizon_ns:
            self._stamps.clear()
            self._images.clear()
            self._stamps.append(stamp_ns)
            self._images.append(StampedImage(stamp_ns, image))
            return [
                PipelineEvent.warn(
                    "image",
                    "image_time_jump",
                    f"image stamps jumped back by {(newest - stamp_ns) / _NS_PER_S:.3f} s "
                    "(more than the image buffer holds): buffer restarted (bag loop or clock "
                    "restart)",
                )
            ]
        if newest is not None and stamp_ns <= newest:
            what = "the same stamp as" if stamp_ns == newest else "older than"
            return [
                PipelineEvent.warn(
                    "image",
                    "image_out_of_order",
                    f"image stamped {stamp_ns / _NS_PER_S:.3f} s is {what} the newest image "
                    f"({newest / _NS_PER_S:.3f} s, {(newest - stamp_ns) / 1e6:.1f} ms newer): "
                    "dropped; check that the camera stamps with a monotonic capture time",
                )
            ]
        self._stamps.append(stamp_ns)
        self._images.append(StampedImage(stamp_ns, image))
        cut = bisect.bisect_left(self._stamps, stamp_ns - self._horizon_ns)
        if cut:
            del self._stamps[:cut]
            del self._images[:cut]
        return []

    def latest_at_or_before(self, time_ns: int) -> StampedImage | None:
        """The newest image with stamp <= ``time_ns``; None when there is none."""
        with self._lock:
            i = bisect.bisect_right(self._stamps, int(time_ns))
            return self._images[i - 1] if i else None

    def oldest_after(self, time_ns: int) -> StampedImage | None:
        """The oldest image with stamp > ``time_ns``; None when there is none."""
        with self._lock:
            i = bisect.bisect_right(self._stamps, int(time_ns))
            return self._images[i] if i < len(self._images) else None

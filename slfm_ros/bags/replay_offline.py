"""Offline replay: every message of a bag, in record order, through slfm_node's processing.

No ROS transport and no clock: the messages are decoded to the rclpy messages the node would
receive and handed to ``NodeFeed`` (the node's handling around ``StreamingLocalizer``) with
their record time as the receive time. The result depends only on the bag and the parameters,
and runs as fast as the estimators allow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from slfm_ros.bags.feed import NodeFeed
from slfm_ros.bags.inputs import BagDispatcher, InputPlan, StreamStats
from slfm_ros.bags.outputs import OutputLog
from slfm_ros.bags.reader import BagReader
from slfm_ros.core.streaming.config import PipelineConfig
from slfm_ros.core.streaming.pipeline import StreamingLocalizer
from slfm_ros.nodes.param_spec import ParamValue


@dataclass
class Replay:
    """Outputs and input facts of one replay.

    play_origin: (wall ns, record ns) pair that maps record times to wall-clock play times
    (live only); rate: play speed (live only).
    """

    log: OutputLog
    stats: StreamStats
    plan: InputPlan
    params: dict[str, ParamValue]
    play_origin: tuple[int, int] | None = None
    rate: float = 1.0

    def wall_of(self, stamp_ns: int) -> float | None:
        """Wall-clock ns at which a stamp's moment was played (stamps share the recorder's
        clock); None offline."""
        if self.play_origin is None:
            return None
        wall0, log0 = self.play_origin
        return wall0 + (stamp_ns - log0) / self.rate


def replay_offline(reader: BagReader, plan: InputPlan, params: dict[str, ParamValue]) -> Replay:
    """Replay ``reader``'s planned topics through an in-process pipeline configured by
    ``params`` (slfm_node's parameter values)."""
    plan = plan.for_node(params)
    stats = StreamStats()
    dispatcher = BagDispatcher(plan, stats)
    pipeline = StreamingLocalizer(PipelineConfig.from_params(params))
    est = pipeline.estimators
    log = OutputLog(
        "offline",
        estimators=est.description,
        backend=est.backend,
        fallback_reason=est.fallback_reason,
    )
    feed = NodeFeed(pipeline, params, log)
    started = time.perf_counter()
    for message in reader.messages(dispatcher.topics):
        item = dispatcher.take(message)
        if item is not None:
            kind, msg = item
            feed.handle(kind, msg, message.log_ns)
    log.wall_s = time.perf_counter() - started
    log.windows_processed = len(feed.windows)
    return Replay(log=log.sorted(), stats=stats, plan=plan, params=params)

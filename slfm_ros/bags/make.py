"""``slfm bag make``: a simulated scenario written as a rosbag2 with ground truth (or, with
``ground_truth=False``, the sensor topics only).

Topics (``slfm_ros.bags.topics.DEFAULT_TOPICS``)
    /audio/audio_info              AudioInfo, once at the start (latched QoS)
    /audio/audio_stamped           AudioDataStamped, S16LE chunks stamped with their first sample
    /camera/image_raw              Image rgb8; /camera/camera_info CameraInfo (same stamps)
    /odom                          Odometry of the simulated robot (odom -> base_link: yaw,
                                   position, body-frame velocities) at ODOM_RATE_HZ, as a
                                   wheel-odometry driver would publish it (slfm_node's
                                   rotation input)
    /ground_truth/sound_direction  PoseWithCovarianceStamped of the target source's azimuth in
                                   the microphone frame, one per audio chunk (at its stamp)
    /ground_truth/camera_yaw       Odometry of the robot's yaw (and position), one per image
Record times (the bag's own timestamps) are those of a recorder on the robot: an audio chunk
is recorded when its last sample is captured, an image ``IMAGE_TRANSFER_S`` after exposure,
odometry ``ODOM_TRANSFER_S`` after its stamp, ground truth at its stamp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from slfm_ros.bags.scenarios import RenderedScene, StreamSettings, render_scene
from slfm_ros.bags.topics import (
    AUDIO_INFO_TYPE,
    AUDIO_TYPE,
    BASE_FRAME,
    CAMERA_FRAME,
    CAMERA_INFO_TYPE,
    CAMERA_OPTICAL_FRAME,
    DEFAULT_TOPICS,
    DIRECTION_TYPE,
    IMAGE_TYPE,
    MIC_FRAME,
    ODOM_FRAME,
    ODOMETRY_TYPE,
)
from slfm_ros.bags.writer import BagWriter

_NS_PER_S = 1_000_000_000
SAMPLE_FORMAT = "S16LE"
IMAGE_TRANSFER_S = 0.01
ODOM_RATE_HZ = 50.0
ODOM_TRANSFER_S = 0.002
# Covariance of the simulated odometry's measured entries (yaw, x, y and their rates).
ODOM_VARIANCE = 1e-6


@dataclass(frozen=True)
class MadeBag:
    """What ``make_bag`` wrote: the folder, message counts per topic, duration (s)."""

    path: Path
    scenario: str
    storage: str
    counts: dict[str, int]
    seconds: float


def camera_info_msg(settings: StreamSettings, stamp_ns: int) -> object:
    """CameraInfo of the simulated pinhole camera (no distortion)."""
    from sensor_msgs.msg import CameraInfo

    from slfm_ros.core.geometry.camera import intrinsics_from_fov
    from slfm_ros.nodes.msg_conversions import ns_to_stamp

    k = intrinsics_from_fov(settings.width, settings.height, math.radians(settings.hfov_deg))
    msg = CameraInfo()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = CAMERA_OPTICAL_FRAME
    msg.width, msg.height = settings.width, settings.height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in k.ravel()]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [k[0, 0], 0.0, k[0, 2], 0.0, 0.0, k[1, 1], k[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    msg.p = [float(v) for v in msg.p]
    return msg


def robot_odometry_msg(scene: RenderedScene, t: float, stamp_ns: int) -> object:
    """nav_msgs/Odometry of the simulated robot at ``t`` s (odom -> base_link): pose, and
    the twist in the body frame (linear velocity by a central difference)."""
    from slfm_ros.nodes.msg_conversions import camera_yaw_msg

    yaw = float(scene.yaw(t))
    rate = float(scene.yaw_rate(t))
    msg = camera_yaw_msg(yaw, ODOM_VARIANCE, rate, ODOM_VARIANCE, stamp_ns, ODOM_FRAME, BASE_FRAME)
    x, y = (float(v) for v in scene.position(t))
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    dt = 1e-3
    vx, vy = (scene.position(t + dt) - scene.position(t - dt)) / (2 * dt)
    msg.twist.twist.linear.x = float(math.cos(yaw) * vx + math.sin(yaw) * vy)
    msg.twist.twist.linear.y = float(-math.sin(yaw) * vx + math.cos(yaw) * vy)
    pose_cov = list(msg.pose.covariance)
    pose_cov[0] = pose_cov[7] = ODOM_VARIANCE
    msg.pose.covariance = pose_cov
    twist_cov = list(msg.twist.covariance)
    twist_cov[0] = twist_cov[7] = ODOM_VARIANCE
    msg.twist.covariance = twist_cov
    return msg


def odometry_times(scene: RenderedScene) -> list[float]:
    """Times (s) of the robot's odometry messages."""
    count = int(math.floor(scene.seconds * ODOM_RATE_HZ + 1e-9))
    return [i / ODOM_RATE_HZ for i in range(count)]


def _schedule(scene: RenderedScene) -> list[tuple[int, int, str, int]]:
    """(record ns, order, kind, index) of every message, in record order."""
    s = scene.settings
    start = s.start_ns
    chunk_ns = int(round(s.chunk_s * _NS_PER_S))
    items: list[tuple[int, int, str, int]] = [(start, 0, "info", 0)]
    for i, first in enumerate(scene.chunk_starts()):
        stamp = start + first * _NS_PER_S // s.sample_rate
        items.append((stamp, 1, "truth_direction", i))
        items.append((stamp + chunk_ns, 2, "audio", i))
    transfer = int(round(IMAGE_TRANSFER_S * _NS_PER_S))
    for i, t in enumerate(scene.image_times()):
        stamp = start + int(round(t * _NS_PER_S))
        items.append((stamp, 1, "truth_yaw", i))
        items.append((stamp + transfer, 3, "image", i))
    odom_transfer = int(round(ODOM_TRANSFER_S * _NS_PER_S))
    for i, t in enumerate(odometry_times(scene)):
        items.append((start + int(round(t * _NS_PER_S)) + odom_transfer, 4, "odom", i))
    items.sort()
    return items


def write_scene(
    scene: RenderedScene, path: str | Path, storage: str = "mcap", ground_truth: bool = True
) -> MadeBag:
    """Write ``scene`` as a bag at ``path`` (a folder that must not exist); without
    ``ground_truth`` only the sensor topics, as a robot records them."""
    from slfm_ros.nodes import msg_conversions as conv

    s = scene.settings
    t = DEFAULT_TOPICS
    chunk = s.chunk_frames
    starts = scene.chunk_starts()
    image_times = scene.image_times()
    odom_times = odometry_times(scene)
    with BagWriter(path, storage) as bag:
        bag.add_topic(t.audio_info, AUDIO_INFO_TYPE, "latched")
        bag.add_topic(t.audio, AUDIO_TYPE, "reliable")
        bag.add_topic(t.image, IMAGE_TYPE, "sensor")
        bag.add_topic(t.camera_info, CAMERA_INFO_TYPE, "sensor")
        bag.add_topic(t.odom, ODOMETRY_TYPE, "reliable")
        if ground_truth:
            bag.add_topic(t.truth_direction, DIRECTION_TYPE, "reliable")
            bag.add_topic(t.truth_yaw, ODOMETRY_TYPE, "reliable")
        for record_ns, _, kind, i in _schedule(scene):
            if not ground_truth and kind.startswith("truth"):
                continue
            if kind == "info":
                msg = conv.make_audio_info_msg(
                    2, s.sample_rate, SAMPLE_FORMAT, "wave", bitrate=s.sample_rate * 2 * 16
                )
                bag.write(t.audio_info, record_ns, msg)
            elif kind == "audio":
                first = starts[i]
                stamp = s.start_ns + first * _NS_PER_S // s.sample_rate
                samples = scene.audio[first : first + chunk]
                bag.write(
                    t.audio,
                    record_ns,
                    conv.make_audio_msg(samples, stamp, SAMPLE_FORMAT, MIC_FRAME),
                )
            elif kind == "truth_direction":
                sec = starts[i] / s.sample_rate
                azimuth = float(scene.source_azimuth(sec))
                bag.write(
                    t.truth_direction,
                    record_ns,
                    conv.sound_direction_msg(azimuth, 0.0, record_ns, MIC_FRAME),
                )
            elif kind == "truth_yaw":
                sec = float(image_times[i])
                msg = conv.camera_yaw_msg(
                    float(scene.yaw(sec)),
                    0.0,
                    float(scene.yaw_rate(sec)),
                    0.0,
                    record_ns,
                    ODOM_FRAME,
                    CAMERA_FRAME,
                )
                x, y = (float(v) for v in scene.position(sec))
                msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
                bag.write(t.truth_yaw, record_ns, msg)
            elif kind == "odom":
                sec = odom_times[i]
                stamp = s.start_ns + int(round(sec * _NS_PER_S))
                bag.write(t.odom, record_ns, robot_odometry_msg(scene, sec, stamp))
            else:
                sec = float(image_times[i])
                stamp = s.start_ns + int(round(sec * _NS_PER_S))
                rgb = scene.image_at(sec)
                bag.write(t.image, record_ns, conv.rgb_to_image(rgb, stamp, CAMERA_OPTICAL_FRAME))
                bag.write(t.camera_info, record_ns, camera_info_msg(s, stamp))
        counts = bag.counts
    return MadeBag(Path(path), scene.scenario.name, storage, counts, scene.seconds)


def make_bag(
    scenario: str,
    path: str | Path,
    storage: str = "mcap",
    seconds: float | None = None,
    seed: int = 0,
    settings: StreamSettings | None = None,
    ground_truth: bool = True,
) -> MadeBag:
    """Render ``scenario`` and write it as a bag (see module doc; ``ground_truth`` False
    leaves out the /ground_truth/* topics)."""
    target = Path(path)
    # Checked before the (slow) rendering so a taken path fails at once.
    BagWriter.check_target(target)
    scene = render_scene(scenario, seconds, seed, settings)
    return write_scene(scene, target, storage, ground_truth)


def summary_line(made: MadeBag) -> str:
    total = sum(made.counts.values())
    per_topic = ", ".join(f"{k} {v}" for k, v in made.counts.items())
    return (
        f"wrote {made.path} ({made.storage}, scenario {made.scenario}, {made.seconds:.1f} s, "
        f"{total} messages: {per_topic})"
    )

"""Topic names and message types of evaluation bags.

Bags written by ``slfm bag make`` use these names; a bag recorded on a robot may use others:
the reader finds the streams by message type and takes names only to break ties.
"""

from __future__ import annotations

from dataclasses import dataclass

AUDIO_TYPE = "audio_common_msgs/msg/AudioDataStamped"
AUDIO_INFO_TYPE = "audio_common_msgs/msg/AudioInfo"
IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
DIRECTION_TYPE = "geometry_msgs/msg/PoseWithCovarianceStamped"
ODOMETRY_TYPE = "nav_msgs/msg/Odometry"
IMU_TYPE = "sensor_msgs/msg/Imu"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
# Types a robot bag often holds that the evaluation cannot read, with what to do instead.
UNSUPPORTED_TYPES = {
    "sensor_msgs/msg/CompressedImage": (
        "compressed images are not decoded: record the raw sensor_msgs/Image topic"
    ),
    "audio_common_msgs/msg/AudioStamped": (
        "this is the audio type of mgonzs13/audio_common, not ros-drivers/audio_common: record "
        "audio_common_msgs/msg/AudioDataStamped + AudioInfo (the audio_capture node)"
    ),
    "audio_common_msgs/msg/AudioData": (
        "unstamped audio cannot be aligned with the camera: record AudioDataStamped"
    ),
}


@dataclass(frozen=True)
class BagTopics:
    """Topic names of one bag (empty = absent)."""

    audio: str = "/audio/audio_stamped"
    audio_info: str = "/audio/audio_info"
    image: str = "/camera/image_raw"
    camera_info: str = "/camera/camera_info"
    odom: str = "/odom"
    truth_direction: str = "/ground_truth/sound_direction"
    truth_yaw: str = "/ground_truth/camera_yaw"


DEFAULT_TOPICS = BagTopics()

# Frames of the simulated robot (the defaults of slfm_node's parameters).
MIC_FRAME = "mic_link"
CAMERA_OPTICAL_FRAME = "camera_optical_frame"
ODOM_FRAME = "odom"
CAMERA_FRAME = "camera_link"
BASE_FRAME = "base_link"

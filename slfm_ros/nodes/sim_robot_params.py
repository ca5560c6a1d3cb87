"""Parameters of ``sim_robot`` (a simulated robot turning in a simulated room)."""

from __future__ import annotations

from slfm_ros.core.sim_robot.acoustics import TALKER_KINDS
from slfm_ros.core.sim_robot.robot import RECEIVERS, ROOMS
from slfm_ros.nodes.param_spec import NodeSpec, ParamSpec

SIM_ROBOT_NODE = NodeSpec(
    name="sim_robot",
    executable="sim_robot",
    description=(
        "a simulated robot that turns in place as cmd_vel says and publishes, in real time, "
        "binaural audio + AudioInfo, camera images + CameraInfo, odom and ground truth"
    ),
    params=(
        # The scene.
        ParamSpec(
            "talker_azimuth_deg",
            150.0,
            "World bearing of the talker from the robot's start heading (REP-103, left positive)",
            unit="deg",
        ),
        ParamSpec("talker_distance_m", 2.0, "Distance of the talker from the robot", unit="m"),
        ParamSpec("talker_kind", "speech", "What the talker plays", choices=TALKER_KINDS),
        ParamSpec(
            "talker_gain_db",
            0.0,
            "Talker level relative to -20 dBFS RMS at 1 m",
            unit="dB",
        ),
        ParamSpec(
            "receiver",
            "stereo_array",
            "Ears: stereo_array = two omnidirectional microphones mic_spacing_m apart "
            "(slfm_node's default free_field geometry); spherical_head = ears on a rigid sphere",
            choices=RECEIVERS,
        ),
        ParamSpec("mic_spacing_m", 0.14, "Microphone spacing of stereo_array", unit="m"),
        ParamSpec("head_radius_m", 0.0875, "Radius of spherical_head", unit="m"),
        ParamSpec(
            "room",
            "room",
            "room = a 6 x 5 x 3 m room (image sources + late tail, rt60_s); anechoic = free field",
            choices=ROOMS,
        ),
        ParamSpec("rt60_s", 0.3, "Reverberation time of the room", unit="s"),
        ParamSpec("noise_dbfs", -60.0, "RMS level of the diffuse noise floor", unit="dBFS"),
        ParamSpec("initial_yaw_deg", 0.0, "The robot's heading at the start", unit="deg"),
        ParamSpec("seed", 0, "Seed of the talker's signal, the noise and the image noise"),
        ParamSpec(
            "rir_cache_dir",
            "",
            "Folder that keeps the rendered room responses between runs; empty = "
            "$SLFM_CACHE_DIR (or ~/.cache/slfm_ros)/sim_robot_rirs",
        ),
        # The base.
        ParamSpec(
            "max_angular_speed",
            2.5,
            "Fastest turn of the base (faster commands are clipped)",
            unit="rad/s",
        ),
        ParamSpec("max_angular_accel", 6.0, "Largest yaw acceleration of the base", unit="rad/s^2"),
        ParamSpec(
            "cmd_timeout_s",
            0.5,
            "The base brakes to a stop when no cmd_vel came for this long",
            unit="s",
        ),
        # Sensors.
        ParamSpec("sample_rate", 48000, "Audio sample rate (a multiple of 100)", unit="Hz"),
        ParamSpec("chunk_ms", 20, "Length of one audio message (a multiple of 10)", unit="ms"),
        ParamSpec("fps", 10.0, "Camera frame rate", unit="Hz"),
        ParamSpec("width", 320, "Image width", unit="px"),
        ParamSpec("height", 240, "Image height", unit="px"),
        ParamSpec("hfov_deg", 60.0, "Horizontal field of view of the camera", unit="deg"),
        ParamSpec("odom_rate_hz", 50.0, "Rate of odom and of the pose ground truth", unit="Hz"),
        ParamSpec(
            "max_lag_s",
            0.5,
            "When rendering falls this far behind real time (a busy machine), the lost time "
            "is skipped: the audio gets a gap and /diagnostics counts it",
            unit="s",
        ),
        ParamSpec(
            "start_when_subscribed",
            False,
            "Hold the simulation clock at zero until the audio and cmd_vel topics have a "
            "subscriber and a publisher (closed-loop runs start together)",
        ),
        # Topics and frames.
        ParamSpec("audio_topic", "audio/audio_stamped", "Published AudioDataStamped (as mic_node)"),
        ParamSpec("info_topic", "audio/audio_info", "Published AudioInfo (latched, as mic_node)"),
        ParamSpec("image_topic", "image_raw", "Published sensor_msgs/Image (rgb8, as camera_node)"),
        ParamSpec("camera_info_topic", "camera_info", "Published sensor_msgs/CameraInfo"),
        ParamSpec("odom_topic", "odom", "Published nav_msgs/Odometry (odom_frame -> base_frame)"),
        ParamSpec("cmd_vel_topic", "cmd_vel", "Subscribed geometry_msgs/Twist (angular.z used)"),
        ParamSpec(
            "ground_truth_prefix",
            "ground_truth",
            "Prefix of the truth topics: <prefix>/sound_direction (the talker in the mic "
            "frame, per audio message), <prefix>/camera_yaw (per image), <prefix>/sound_source "
            "(the talker in the odom frame, 1 Hz)",
        ),
        ParamSpec("mic_frame_id", "mic_link", "frame_id of the audio"),
        ParamSpec("camera_frame_id", "camera_optical_frame", "frame_id of the images"),
        ParamSpec("odom_frame_id", "odom", "frame_id of odom (the world)"),
        ParamSpec("base_frame_id", "base_link", "child_frame_id of odom"),
        ParamSpec("diagnostics_period", 1.0, "Period of the status on /diagnostics", unit="s"),
    ),
)

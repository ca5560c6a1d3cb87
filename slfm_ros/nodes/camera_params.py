"""Parameters of ``camera_node`` (OpenCV camera / video capture)."""

from __future__ import annotations

from slfm_ros.nodes.param_spec import NodeSpec, ParamSpec

CAMERA_NODE = NodeSpec(
    name="camera_node",
    executable="camera_node",
    description="captures a camera, stream or video file and publishes Image (rgb8) + CameraInfo",
    params=(
        ParamSpec(
            "source",
            "0",
            "Video source: a device index as a string ('0'; on the command line "
            "-p source:=\"'0'\"), a device path ('/dev/video0'), a video file path or a "
            "stream URL",
        ),
        ParamSpec("loop", False, "Restart a video file at its end instead of stopping"),
        ParamSpec(
            "fps",
            0.0,
            "Publish rate; 0 = the source's own rate (30 if the source does not report one)",
            unit="Hz",
        ),
        ParamSpec("width", 0, "Resize output images to this width; 0 = keep", unit="px"),
        ParamSpec("height", 0, "Resize output images to this height; 0 = keep", unit="px"),
        ParamSpec(
            "camera_info_url",
            "",
            "Calibration YAML in ROS camera_info format (a path or file:// URL); empty = "
            "intrinsics from hfov_deg",
        ),
        ParamSpec(
            "hfov_deg",
            60.0,
            "Horizontal field of view used for the intrinsics when no calibration is given",
            unit="deg",
        ),
        ParamSpec("frame_id", "camera_optical_frame", "frame_id of the published headers"),
        ParamSpec("image_topic", "image_raw", "Topic of the sensor_msgs/Image stream"),
        ParamSpec(
            "camera_info_topic",
            "camera_info",
            "Topic of the sensor_msgs/CameraInfo stream",
        ),
        ParamSpec(
            "diagnostics_period",
            1.0,
            "Period of the capture status on /diagnostics; the measured frame rate it reports "
            "is taken over this period",
            unit="s",
        ),
    ),
)

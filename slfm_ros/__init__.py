"""slfm_ros: Sound Localization from Motion for ROS 2."""

__version__ = "0.1.0"

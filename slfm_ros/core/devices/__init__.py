"""Sensor input without ROS: what mic_node and camera_node wrap.

``audio_device`` captures stamped chunks from a microphone (sounddevice); ``video_source``
reads frames from a camera, a stream or a video file and loads the camera's calibration;
``capture_health`` turns what a frame source did into the status camera_node reports.
"""

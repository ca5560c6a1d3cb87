"""Sound-source tracking in the world frame: front/back resolved from the robot's own turns.

``rotation_source``: the robot's yaw from odometry, an IMU or the camera yaw;
``bearing_tracker``: tracks with front and back hypotheses; ``sound_tracking``: the two per
window, as slfm_node runs them.
"""

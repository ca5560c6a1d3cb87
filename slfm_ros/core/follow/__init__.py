"""Turning a robot to face a tracked sound source.

``heading`` keeps the robot's recent yaw (from odometry, or from its own commands when there
is none) so a track stamped a moment ago can be brought to the present; ``controller`` decides
the yaw rate: stop, probe front/back with a small turn, turn to the source, or hold while
facing it; ``goal`` places a goal pose toward the source for a navigation stack.
"""

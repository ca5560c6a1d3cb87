"""Parameters of ``sound_follower`` (turns the robot to face the tracked sound source)."""

from __future__ import annotations

import math
from typing import cast

from slfm_ros.core.follow.controller import FollowerConfig
from slfm_ros.nodes.param_spec import NodeSpec, ParamSpec, ParamValue

_DEFAULT = FollowerConfig()


def _deg(angle: float) -> float:
    return round(math.degrees(angle), 6)


SOUND_FOLLOWER = NodeSpec(
    name="sound_follower",
    executable="sound_follower",
    description=(
        "turns the robot to face the sound source slfm_node tracks: geometry_msgs/Twist on "
        "cmd_vel, optionally a goal pose toward the source (~/goal_pose)"
    ),
    params=(
        ParamSpec(
            "track_topic",
            "slfm_node/sound_tracks",
            "Subscribed tracks of slfm_node (diagnostic_msgs/DiagnosticArray, the primary "
            "track first)",
        ),
        ParamSpec(
            "odom_topic",
            "odom",
            "Subscribed nav_msgs/Odometry: the turn since a track's stamp and the robot "
            "position of the goal; without it the follower counts its own commands",
        ),
        ParamSpec("cmd_vel_topic", "cmd_vel", "Published geometry_msgs/Twist (angular.z only)"),
        ParamSpec("control_rate_hz", 20.0, "Rate of the control loop and of cmd_vel", unit="Hz"),
        ParamSpec("max_angular_speed", _DEFAULT.max_speed, "Fastest commanded turn", unit="rad/s"),
        ParamSpec(
            "max_angular_accel",
            _DEFAULT.max_accel,
            "Largest change of the commanded turn rate, also when stopping",
            unit="rad/s^2",
        ),
        ParamSpec(
            "gain",
            _DEFAULT.gain,
            "Turn rate per radian of heading error (below the speed and braking limits)",
            unit="1/s",
        ),
        ParamSpec(
            "deadband_deg",
            _deg(_DEFAULT.deadband),
            "Heading errors up to this count as facing the source: the robot stops",
            unit="deg",
        ),
        ParamSpec(
            "resume_deg",
            _deg(_DEFAULT.resume),
            "While facing, the robot turns again only once the error exceeds this",
            unit="deg",
        ),
        ParamSpec(
            "max_track_age_s",
            _DEFAULT.max_track_age_s,
            "A track whose window ended longer ago than this is stale (slfm_node stopped or "
            "falls far behind): the robot stops",
            unit="s",
        ),
        ParamSpec(
            "max_unheard_s",
            _DEFAULT.max_unheard_s,
            "A track whose source was last heard longer ago than this is stale: the robot stops",
            unit="s",
        ),
        ParamSpec(
            "probe",
            _DEFAULT.probe,
            "Turn a little toward the side the source is heard on while front/back is "
            "undecided, so the tracker can decide; false = wait without moving",
        ),
        ParamSpec(
            "probe_angle_deg", _deg(_DEFAULT.probe_angle), "Largest turn of one probe", unit="deg"
        ),
        ParamSpec("probe_speed", _DEFAULT.probe_speed, "Turn rate of a probe", unit="rad/s"),
        ParamSpec(
            "probe_wait_s",
            _DEFAULT.probe_wait_s,
            "Time held still after a probe before the next one",
            unit="s",
        ),
        ParamSpec(
            "max_probes", _DEFAULT.max_probes, "Probes per undecided track; then the robot waits"
        ),
        ParamSpec(
            "odom_timeout_s",
            _DEFAULT.odom_timeout_s,
            "Odometry older than this is not used (the follower counts its own commands)",
            unit="s",
        ),
        ParamSpec(
            "publish_goal",
            False,
            "Publish ~/goal_pose (geometry_msgs/PoseStamped) toward a resolved source",
        ),
        ParamSpec(
            "goal_distance_m",
            1.0,
            "Distance of the goal from the robot along the source bearing",
            unit="m",
        ),
        ParamSpec("goal_period_s", 1.0, "Shortest time between two goal poses", unit="s"),
        ParamSpec("diagnostics_period", 1.0, "Period of the status on /diagnostics", unit="s"),
    ),
)


def follower_config(p: dict[str, ParamValue]) -> FollowerConfig:
    """The controller settings of the parameters (ConfigError on bad values)."""

    def f(name: str) -> float:
        return float(cast(float, p[name]))

    return FollowerConfig(
        max_speed=f("max_angular_speed"),
        max_accel=f("max_angular_accel"),
        gain=f("gain"),
        deadband=math.radians(f("deadband_deg")),
        resume=math.radians(f("resume_deg")),
        max_track_age_s=f("max_track_age_s"),
        max_unheard_s=f("max_unheard_s"),
        probe=bool(p["probe"]),
        probe_angle=math.radians(f("probe_angle_deg")),
        probe_speed=f("probe_speed"),
        probe_wait_s=f("probe_wait_s"),
        max_probes=int(cast(int, p["max_probes"])),
        odom_timeout_s=f("odom_timeout_s"),
    )

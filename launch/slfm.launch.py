"""ros2 launch slfm_ros slfm.launch.py [use_mic:=false] [namespace:=robot1] [backend:=torch] ...

Starts mic_node, camera_node and slfm_node (and, with use_follower:=true, sound_follower)
with config/slfm.yaml. The nodes, parameters and launch arguments come from
slfm_ros.nodes.launch_description, which `slfm launch` (the runner for machines without ROS)
uses too, so both start the same thing. `ros2 launch slfm_ros slfm.launch.py --show-args`
lists the arguments.
"""

from __future__ import annotations

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from slfm_ros.nodes.launch_description import LAUNCH_ARGS, PACKAGE, plan_nodes


def _nodes(context: LaunchContext) -> list[Node]:
    values = {arg.name: LaunchConfiguration(arg.name).perform(context) for arg in LAUNCH_ARGS}
    return [
        Node(
            package=PACKAGE,
            executable=plan.executable,
            name=plan.name,
            namespace=plan.namespace,
            parameters=[plan.params_file, plan.overrides],
            remappings=list(plan.remappings),
            arguments=["--ros-args", "--log-level", plan.log_level],
            additional_env=plan.env,
            output="screen",
            emulate_tty=True,
        )
        for plan in plan_nodes(values)
    ]


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(arg.name, default_value=arg.default, description=arg.help)
        for arg in LAUNCH_ARGS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])

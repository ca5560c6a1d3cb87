"""The one description of what the slfm_ros launch starts.

``launch/slfm.launch.py`` (ros2 launch, on a ROS install) and ``slfm launch`` (subprocesses,
without ROS) both call ``plan_nodes`` with their launch arguments, so they start the same nodes
with the same parameter file, overrides, remappings, namespace and environment (the Fast DDS
profile config/fastdds_large_data.xml, which keeps large images from crowding out audio).

Launch arguments are strings. An empty topic/model/backend/estimator argument means "keep the
value of the parameter file": the YAML stays the single source of defaults, and the launch
arguments only override.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from slfm_ros.core.errors import ConfigError
from slfm_ros.nodes.camera_params import CAMERA_NODE
from slfm_ros.nodes.follower_params import SOUND_FOLLOWER
from slfm_ros.nodes.mic_params import MIC_NODE
from slfm_ros.nodes.param_spec import NodeSpec, ParamValue
from slfm_ros.nodes.slfm_params import SLFM_NODE

PACKAGE = "slfm_ros"
PARAMS_FILE_NAME = "slfm.yaml"
FASTDDS_PROFILE_NAME = "fastdds_large_data.xml"
# Fast DDS 3 (Kilted on) reads the first and warns about the second, which Fast DDS 2 reads.
FASTDDS_PROFILE_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
FASTDDS_2_DISTROS = ("humble", "iron", "jazzy")


@dataclass(frozen=True)
class LaunchArg:
    name: str
    default: str
    help: str


LAUNCH_ARGS: tuple[LaunchArg, ...] = (
    LaunchArg("use_mic", "true", "Start mic_node (true/false)"),
    LaunchArg("use_camera", "true", "Start camera_node (true/false)"),
    LaunchArg(
        "use_follower",
        "false",
        "Start sound_follower, which turns the robot to face the tracked sound (true/false)",
    ),
    LaunchArg(
        "namespace",
        "",
        "Namespace of all nodes; the parameter file's /**/<node> keys still apply",
    ),
    LaunchArg(
        "params_file",
        "",
        "Parameter YAML of all nodes; empty = the package's config/slfm.yaml",
    ),
    LaunchArg(
        "audio_topic",
        "",
        "AudioDataStamped topic (mic_node publishes, slfm_node subscribes); empty = YAML",
    ),
    LaunchArg("audio_info_topic", "", "AudioInfo topic of mic_node and slfm_node; empty = YAML"),
    LaunchArg(
        "image_topic",
        "",
        "Image topic (camera_node publishes, slfm_node subscribes); empty = YAML",
    ),
    LaunchArg("model_dir", "", "slfm_node model folder; empty = YAML"),
    LaunchArg("backend", "", "slfm_node backend (auto|tensorrt|onnxruntime|torch); empty = YAML"),
    LaunchArg("estimator", "", "slfm_node estimator (slfm|classic); empty = YAML"),
    LaunchArg("log_level", "info", "ROS log level of all nodes (debug|info|warn|error)"),
    LaunchArg(
        "fastdds_profile",
        "",
        "Fast DDS XML profile of the nodes; empty = config/fastdds_large_data.xml (unless "
        "FASTDDS_DEFAULT_PROFILES_FILE is set or another RMW is used); none = DDS defaults",
    ),
)


@dataclass(frozen=True)
class NodeEntry:
    """A node the launch may start.

    module:     Python module with ``main()`` (what the console script ``spec.executable`` runs).
    enabled_by: boolean launch argument that switches it on, or None (always started).
    overrides:  (launch argument, parameter) pairs: a non-empty argument sets the parameter.
    remappings: (from, to) topic remappings.
    """

    spec: NodeSpec
    module: str
    enabled_by: str | None
    overrides: tuple[tuple[str, str], ...]
    remappings: tuple[tuple[str, str], ...] = ()


NODES: tuple[NodeEntry, ...] = (
    NodeEntry(
        MIC_NODE,
        "slfm_ros.nodes.mic_node",
        "use_mic",
        (("audio_topic", "audio_topic"), ("audio_info_topic", "info_topic")),
    ),
    NodeEntry(
        CAMERA_NODE,
        "slfm_ros.nodes.camera_node",
        "use_camera",
        (("image_topic", "image_topic"),),
    ),
    NodeEntry(
        SLFM_NODE,
        "slfm_ros.nodes.slfm_node",
        None,
        (
            ("audio_topic", "audio_topic"),
            ("audio_info_topic", "audio_info_topic"),
            ("image_topic", "image_topic"),
            ("model_dir", "model_dir"),
            ("backend", "backend"),
            ("estimator", "estimator"),
        ),
    ),
    NodeEntry(SOUND_FOLLOWER, "slfm_ros.nodes.sound_follower", "use_follower", ()),
)

ALL_NODE_SPECS: tuple[NodeSpec, ...] = tuple(entry.spec for entry in NODES)


@dataclass(frozen=True)
class NodePlan:
    """One node to start: everything both launchers need."""

    name: str
    executable: str
    module: str
    namespace: str
    params_file: str
    overrides: dict[str, ParamValue]
    remappings: tuple[tuple[str, str], ...]
    log_level: str
    env: dict[str, str]


def shipped_config(name: str) -> str:
    """config/<name> of a source checkout (editable install), else of the installed package
    share (colcon / ament index)."""
    source = Path(__file__).resolve().parents[2] / "config" / name
    if source.is_file():
        return str(source)
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )

        share = Path(get_package_share_directory(PACKAGE)) / "config" / name
        if share.is_file():
            return str(share)
    except (ImportError, PackageNotFoundError):
        pass
    raise ConfigError(
        f"no {name} found at {source} nor in the installed share of {PACKAGE}: "
        "pass its path as a launch argument"
    )


def default_params_file() -> str:
    """The shipped config/slfm.yaml."""
    return shipped_config(PARAMS_FILE_NAME)


def dds_environment(profile: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Environment variables the nodes need for the Fast DDS profile launch argument.

    ``profile``: a path, "none" (no profile), or "" = the shipped large-data profile, unless
    ``environ`` already names a profile or selects another RMW than Fast DDS.
    """
    if profile.strip().lower() == "none":
        return {}
    if profile:
        if not Path(profile).is_file():
            raise ConfigError(f"fastdds_profile {profile!r} does not exist")
        path = profile
    else:
        rmw = environ.get("RMW_IMPLEMENTATION", "") or "rmw_fastrtps_cpp"
        if any(environ.get(v) for v in FASTDDS_PROFILE_VARS) or not rmw.startswith("rmw_fastrtps"):
            return {}
        path = shipped_config(FASTDDS_PROFILE_NAME)
    fastdds_2 = environ.get("ROS_DISTRO", "") in FASTDDS_2_DISTROS
    return {FASTDDS_PROFILE_VARS[1] if fastdds_2 else FASTDDS_PROFILE_VARS[0]: path}


def parse_bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"launch argument {name}: expected true or false, got {text!r}")


def resolve_launch_args(values: Mapping[str, str]) -> dict[str, str]:
    """Defaults of LAUNCH_ARGS updated by ``values``; unknown names raise ConfigError."""
    known = {a.name: a.default for a in LAUNCH_ARGS}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown launch argument(s) {unknown}; known: {sorted(known)}")
    known.update({k: str(v) for k, v in values.items()})
    return known


def normalize_namespace(namespace: str) -> str:
    ns = namespace.strip().strip("/")
    return f"/{ns}" if ns else ""


def _typed(spec: NodeSpec, param: str, text: str) -> ParamValue:
    target = next(p for p in spec.params if p.name == param)
    value = text if isinstance(target.default, str) else yaml.safe_load(text)
    return target.validate(value)


def plan_nodes(
    values: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> list[NodePlan]:
    """The nodes to start for launch arguments ``values`` (names of LAUNCH_ARGS);
    ``environ`` (default: this process's) decides the DDS profile, see dds_environment."""
    args = resolve_launch_args(values)
    params_file = args["params_file"] or default_params_file()
    if not Path(params_file).is_file():
        raise ConfigError(f"params_file {params_file!r} does not exist")
    env = dds_environment(args["fastdds_profile"], os.environ if environ is None else environ)
    plans = []
    for entry in NODES:
        if entry.enabled_by is not None and not parse_bool(
            entry.enabled_by, args[entry.enabled_by]
        ):
            continue
        overrides = {
            param: _typed(entry.spec, param, args[arg])
            for arg, param in entry.overrides
            if args[arg] != ""
        }
        plans.append(
            NodePlan(
                name=entry.spec.name,
                executable=entry.spec.executable,
                module=entry.module,
                namespace=normalize_namespace(args["namespace"]),
                params_file=params_file,
                overrides=overrides,
                remappings=entry.remappings,
                log_level=args["log_level"],
                env=env,
            )
        )
    return plans


def ros_arg_value(value: ParamValue) -> str:
    """``value`` as the text of a ``-p name:=value`` argument."""
    # -p values are parsed as YAML by rcl: quote strings so "1.0" or "true" stay strings.
    if isinstance(value, str):
        return yaml.safe_dump(value, default_style='"').strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and not isinstance(value, float):
        return str(value)
    if isinstance(value, float):
        # A plain YAML float (safe_dump would add a "..." document end): 1e-09 needs a dot.
        if not math.isfinite(value):
            return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
        text = repr(value)
        return text.replace("e", ".0e") if "e" in text and "." not in text else text
    return yaml.safe_dump(value, default_flow_style=True).strip()


def node_command(plan: NodePlan, python: str = sys.executable) -> list[str]:
    """Command line that runs ``plan`` as a process, as ros2 launch would."""
    cmd = [python, "-m", plan.module, "--ros-args", "-r", f"__node:={plan.name}"]
    if plan.namespace:
        cmd += ["-r", f"__ns:={plan.namespace}"]
    cmd += ["--params-file", plan.params_file]
    for name, value in plan.overrides.items():
        cmd += ["-p", f"{name}:={ros_arg_value(value)}"]
    for src, dst in plan.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    cmd += ["--log-level", plan.log_level]
    return cmd

"""ament_python packaging of slfm_ros.

On a ROS 2 installation, `colcon build` runs this file: the ROS dependencies come from
package.xml (rosdep); the extras below name the PyPI-only packages (`pip install .[runtime]`).
Without ROS, `make setup` installs it in editable mode into .venv.
"""

from __future__ import annotations

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "slfm_ros"
HERE = os.path.dirname(os.path.abspath(__file__))


def tree(source: str, target: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing every file below ``source`` (relative to this file) into
    ``target``, keeping the folder structure."""
    entries = []
    for folder, _, files in sorted(os.walk(os.path.join(HERE, source))):
        files = [f for f in sorted(files) if not f.startswith(".")]
        if files:
            relative = os.path.relpath(folder, HERE)
            sub = os.path.relpath(folder, os.path.join(HERE, source))
            destination = target if sub == "." else os.path.join(target, sub)
            entries.append((destination, [os.path.join(relative, f) for f in files]))
    return entries


def files(pattern: str) -> list[str]:
    """Files matching ``pattern`` (relative to this file), as relative paths."""
    return sorted(os.path.relpath(p, HERE) for p in glob(os.path.join(HERE, pattern)))


SHARE = os.path.join("share", PACKAGE)

# The trainer lives in the repository's training/ folder and installs under a name of this
# project, so that it cannot collide with another distribution's top-level `training`.
TRAINER = "slfm_training"
PACKAGES = find_packages(include=[PACKAGE, f"{PACKAGE}.*"]) + [
    TRAINER,
    *(f"{TRAINER}.{name}" for name in find_packages(where="training")),
]

DATA_FILES = [
    ("share/ament_index/resource_index/packages", [os.path.join("resource", PACKAGE)]),
    (SHARE, ["package.xml"]),
    (os.path.join(SHARE, "launch"), files("launch/*.launch.py")),
    (os.path.join(SHARE, "config"), files("config/*.yaml") + files("config/*.xml")),
    (os.path.join(SHARE, "config", "sim"), files("config/sim/*.yaml")),
    *tree("models", os.path.join(SHARE, "models")),
]

# PyPI-only dependencies (no Debian/rosdep package); the pinned versions of the development
# environment are in requirements/.
EXTRAS_REQUIRE = {
    # Inference back-ends, simulation and bag tools used by the nodes and the `slfm` CLI.
    "runtime": [
        "onnxruntime>=1.17",
        "onnx>=1.15",
        "pyroomacoustics>=0.7",
        "rosbags>=0.10",
        "lz4>=4",
        "backports.zstd>=1; python_version<'3.14'",
        "matplotlib>=3.7",
        "soundfile>=0.12",
        "sounddevice>=0.4.6",
    ],
    # Training of the audio and visual models.
    "train": [
        "torch>=2.2",
        "tensorboard>=2.15",
        "h5py>=3.8",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "pyroomacoustics>=0.7",
        "soundfile>=0.12",
        "onnx>=1.15",
    ],
    # Tests and static checks.
    "dev": [
        "pytest>=8",
        "pytest-timeout>=2.2",
        "ruff>=0.6",
        "mypy>=1.10",
    ],
}

ENTRY_POINTS = {
    "console_scripts": [
        "mic_node = slfm_ros.nodes.mic_node:main",
        "camera_node = slfm_ros.nodes.camera_node:main",
        "slfm_node = slfm_ros.nodes.slfm_node:main",
        "sound_follower = slfm_ros.nodes.sound_follower:main",
        "sim_robot = slfm_ros.nodes.sim_robot_node:main",
        "slfm = slfm_ros.cli.main:main",
    ],
}

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Sound Localization from Motion for ROS 2",
    packages=PACKAGES,
    package_dir={TRAINER: "training"},
    data_files=DATA_FILES,
    python_requires=">=3.10",
    install_requires=["setuptools"],
    extras_require=EXTRAS_REQUIRE,
    zip_safe=True,
    maintainer="slfm_ros maintainers",
    maintainer_email="slfm_ros@example.com",
    license="Apache-2.0",
    entry_points=ENTRY_POINTS,
)

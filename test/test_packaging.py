"""The ament_python packaging: package.xml declares what the code imports, setup.py installs
what `ros2 launch` / `ros2 run` look up, and colcon sees exactly one package in the tree."""

from __future__ import annotations

import ast
import configparser
import importlib
import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from catkin_pkg.package import Package, parse_package
from setuptools.dist import Distribution

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "slfm_ros"
SHARE = f"share/{PACKAGE}"

# Top-level import name -> the package.xml key that provides it on a ROS installation.
ROSDEP_KEYS = {
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "std_msgs": "std_msgs",
    "builtin_interfaces": "builtin_interfaces",
    "sensor_msgs": "sensor_msgs",
    "geometry_msgs": "geometry_msgs",
    "nav_msgs": "nav_msgs",
    "diagnostic_msgs": "diagnostic_msgs",
    "visualization_msgs": "visualization_msgs",
    "audio_common_msgs": "audio_common_msgs",
    "ament_index_python": "ament_index_python",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "soundfile": "python3-soundfile",
    "sounddevice": "python3-sounddevice-pip",
}
# Top-level import name -> PyPI distribution of a setup.py extra (no rosdep key).
PYPI_ONLY = {
    "onnxruntime": "onnxruntime",
    "onnx": "onnx",
    "pyroomacoustics": "pyroomacoustics",
    "rosbags": "rosbags",
    "torch": "torch",
    "tensorboard": "tensorboard",
    "h5py": "h5py",
    "tqdm": "tqdm",
    "matplotlib": "matplotlib",
    # Decompression of damaged MCAP chunks; the same libraries rosbags reads them with.
    "lz4": "lz4",
    "backports": "backports.zstd",
    # Python >= 3.14 standard library; older interpreters take backports.zstd instead.
    "compression": "backports.zstd",
}
# Installed together with the GPU driver stack, never from this package's dependencies; the
# TensorRT back-end imports them only when selected and falls back without them.
ACCELERATOR_ONLY = {"tensorrt", "pycuda", "cuda"}
TRAINER = "slfm_training"
FIRST_PARTY = {PACKAGE, TRAINER}


@pytest.fixture(scope="module")
def package() -> Package:
    return parse_package(str(REPO / "package.xml"))


@pytest.fixture(scope="module")
def dist() -> Distribution:
    """The Distribution that setup.py configures, without running any command."""
    from distutils.core import run_setup

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return run_setup("setup.py", stop_after="init")
    finally:
        os.chdir(cwd)


def _python_files(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((REPO / folder).rglob("*.py"))


def _imported_top_level(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - FIRST_PARTY - {"__future__"}


def _extras_distributions(dist: Distribution) -> set[str]:
    names = set()
    for requirements in dist.extras_require.values():
        for requirement in requirements:
            name = requirement.split(";")[0]
            for sep in "<>=!~[ ":
                name = name.split(sep)[0]
            names.add(name.strip().lower())
    return names


def test_package_xml_is_valid_format_3(package: Package) -> None:
    package.validate()
    assert package.package_format == 3
    assert package.name == PACKAGE
    assert package.get_build_type() == "ament_python"


def test_versions_agree(package: Package, dist: Distribution) -> None:
    import slfm_ros

    assert package.version == dist.get_version() == slfm_ros.__version__


def test_every_third_party_import_is_declared(package: Package, dist: Distribution) -> None:
    exec_keys = {d.name for d in package.exec_depends + package.build_export_depends}
    exec_keys |= {d.name for d in package.build_depends}
    extras = _extras_distributions(dist)
    problems = []
    for path in _python_files(PACKAGE, "training", "launch"):
        for name in sorted(_imported_top_level(path)):
            where = path.relative_to(REPO)
            if name in ROSDEP_KEYS:
                if ROSDEP_KEYS[name] not in exec_keys:
                    problems.append(f"{where}: '{name}' needs <exec_depend>{ROSDEP_KEYS[name]}")
            elif name in PYPI_ONLY:
                if PYPI_ONLY[name] not in extras:
                    problems.append(f"{where}: '{name}' needs '{PYPI_ONLY[name]}' in an extra")
            elif name not in ACCELERATOR_ONLY:
                problems.append(
                    f"{where}: '{name}' is not declared; add its rosdep key to package.xml "
                    "(or its PyPI name to a setup.py extra) and to the tables of this test"
                )
    assert not problems, "\n".join(problems)


def test_tests_need_only_declared_test_dependencies(package: Package) -> None:
    test_keys = {d.name for d in package.test_depends}
    assert "python3-pytest" in test_keys


def _data_files(dist: Distribution) -> dict[str, set[str]]:
    installed: dict[str, set[str]] = {}
    for target, sources in dist.data_files:
        installed.setdefault(target, set()).update(sources)
    return installed


def test_data_files_install_what_ros_looks_up(dist: Distribution) -> None:
    installed = _data_files(dist)
    assert installed["share/ament_index/resource_index/packages"] == {f"resource/{PACKAGE}"}
    assert (REPO / "resource" / PACKAGE).is_file()
    assert "package.xml" in installed[SHARE]
    launch_files = {f"launch/{p.name}" for p in (REPO / "launch").glob("*.launch.py")}
    config_files = {
        f"config/{p.name}"
        for pattern in ("*.yaml", "*.xml")
        for p in (REPO / "config").glob(pattern)
    }
    sim_configs = {f"config/sim/{p.name}" for p in (REPO / "config" / "sim").glob("*.yaml")}
    assert "launch/slfm.launch.py" in launch_files
    assert "config/slfm.yaml" in config_files
    assert installed[f"{SHARE}/launch"] == launch_files
    assert installed[f"{SHARE}/config"] == config_files
    assert "config/fastdds_large_data.xml" in config_files
    assert sim_configs and installed[f"{SHARE}/config/sim"] == sim_configs


def _model_files() -> list[str]:
    """Files below models/ (repository-relative), the ones a release ships."""
    models = REPO / "models"
    if not models.is_dir():
        return []
    return sorted(
        str(p.relative_to(REPO))
        for p in models.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )


def _unshipped(model_files: list[str], installed: dict[str, set[str]]) -> list[str]:
    """Model files that data_files does not install, or not under share/<pkg>/ at the same
    place below models/ as in the repository."""
    target_of = {source: target for target, sources in installed.items() for source in sources}
    return [f for f in model_files if target_of.get(f) != f"{SHARE}/{Path(f).parent}"]


def test_unshipped_model_files_are_found() -> None:
    files = ["models/default/card.yaml", "models/default/weights.pt", "models/default/onnx/a.onnx"]
    complete = {
        f"{SHARE}/models/default": {"models/default/card.yaml", "models/default/weights.pt"},
        f"{SHARE}/models/default/onnx": {"models/default/onnx/a.onnx"},
    }
    assert _unshipped(files, complete) == []
    partial = {
        f"{SHARE}/models/default": {"models/default/card.yaml"},
        f"{SHARE}/models": {"models/default/onnx/a.onnx"},  # lost its folder
    }
    assert _unshipped(files, partial) == ["models/default/weights.pt", "models/default/onnx/a.onnx"]


def test_data_files_ship_every_model_file(dist: Distribution) -> None:
    model_files = _model_files()
    assert "models/default/card.yaml" in model_files, "the default model is not in models/"
    missing = _unshipped(model_files, _data_files(dist))
    assert not missing, f"setup.py data_files do not install these model files: {missing}"


def test_the_trainer_installs_under_a_name_of_this_project(dist: Distribution) -> None:
    top_level = {name.split(".")[0] for name in dist.packages}
    assert top_level == {PACKAGE, TRAINER}
    assert dist.package_dir == {TRAINER: "training"}
    expected = {TRAINER} | {
        f"{TRAINER}.{p.parent.relative_to(REPO / 'training').as_posix().replace('/', '.')}"
        for p in (REPO / "training").rglob("__init__.py")
        if p.parent != REPO / "training"
    }
    assert set(p for p in dist.packages if p.startswith(TRAINER)) == expected
    trainer = importlib.import_module(TRAINER)
    assert Path(trainer.__file__).resolve().parent == REPO / "training"


def test_console_scripts_resolve(dist: Distribution) -> None:
    scripts = {}
    for line in dist.entry_points["console_scripts"]:
        name, target = (part.strip() for part in line.split("="))
        scripts[name] = target
    assert set(scripts) == {
        "mic_node",
        "camera_node",
        "slfm_node",
        "sound_follower",
        "sim_robot",
        "slfm",
    }
    for name, target in scripts.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name


def test_scripts_go_where_ros2_run_finds_them() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert cfg["develop"]["script_dir"] == f"$base/lib/{PACKAGE}"
    assert cfg["install"]["install_scripts"] == f"$base/lib/{PACKAGE}"


def test_colcon_sees_one_package() -> None:
    """colcon must build slfm_ros from setup.py and must not find the interface package that
    `make setup` builds for machines without ROS."""
    found = []
    for folder, subfolders, files in os.walk(REPO):
        here = Path(folder)
        if "COLCON_IGNORE" in files or here.name.startswith(".") or here.name in {"build"}:
            subfolders.clear()
            continue
        if "package.xml" in files:
            found.append(here.relative_to(REPO))
            subfolders.clear()  # colcon does not look inside a package
    assert found == [Path(".")]
    assert (REPO / "interfaces" / "COLCON_IGNORE").is_file()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "project" not in pyproject and "build-system" not in pyproject

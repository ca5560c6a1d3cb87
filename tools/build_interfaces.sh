#!/usr/bin/env bash
# Builds a ROS 2 interface package with the ament_cmake and rosidl of the PyPI wheels in a venv
# and installs it into the venv prefix itself, next to the wheels' own message packages:
#   <venv>/lib/lib<pkg>__*.so       found at run time through the LD_LIBRARY_PATH that the wheels'
#                                   start-up hook (ros_wheels_bootstrapper.pth) sets to <venv>/lib,
#   <venv>/lib/python3.11/site-packages/<pkg>   importable by the venv interpreter,
#   <venv>/share/<pkg>              CMake config and the .msg/.idl files.
# So nothing needs to be exported before `import <pkg>.msg`.
#
# Usage: build_interfaces.sh VENV PACKAGE_SOURCE_DIR [BUILD_DIR]
set -euo pipefail

venv=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=$(basename "$src")
build=${3:-$repo/build/interfaces/$name}
py=$venv/bin/python

unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
# Only the venv provides ament packages; a sourced ROS installation must not mix in.
export AMENT_PREFIX_PATH=$venv
export CMAKE_PREFIX_PATH=$venv
export PATH=$venv/bin:$PATH
unset PYTHONPATH

rm -rf "$build"
mkdir -p "$(dirname "$build")"
cmake -S "$src" -B "$build" \
	-DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_INSTALL_PREFIX="$venv" \
	-DCMAKE_PROJECT_INCLUDE="$repo/tools/cmake/wheel_targets_fix.cmake" \
	-DPython3_EXECUTABLE="$py" \
	-DPython3_FIND_VIRTUALENV=ONLY \
	-DBUILD_TESTING=OFF \
	-Wno-dev >"$build.configure.log" 2>&1 ||
	{
		tail -n 40 "$build.configure.log" >&2
		exit 1
	}
cmake --build "$build" --parallel "$(nproc)" >"$build.build.log" 2>&1 ||
	{
		grep -E -m 20 'error|Error' "$build.build.log" >&2 || tail -n 40 "$build.build.log" >&2
		exit 1
	}
cmake --install "$build" >"$build.install.log" 2>&1 ||
	{
		tail -n 20 "$build.install.log" >&2
		exit 1
	}

"$py" -c "import importlib; importlib.import_module('$name.msg')" ||
	{
		echo "built $name but the venv cannot import $name.msg" >&2
		exit 1
	}

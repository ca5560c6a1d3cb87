#!/usr/bin/env bash
# Creates or updates the project environment in $VENV (default: .venv at the repository root):
#   1. Debian packages the project needs at run time and for building (only if dpkg lacks them),
#   2. the Python virtual environment (Python 3.11),
#   3. the wheels of requirements/ (torch CPU first, so nothing can pull a CUDA build),
#   4. slfm_ros itself in editable mode (console scripts `slfm`, `mic_node`, ...),
#   5. the audio_common_msgs interface package, unless a ROS installation provides it.
# Every step records the hash of its inputs in $VENV/.slfm-setup/ and is skipped when they have
# not changed, so a second run takes about a second.
#
# Environment: PYTHON (interpreter to create the venv with, default python3.11), VENV,
# TORCH_INDEX_URL (index with CPU builds of torch, used when the default index has none).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$repo/.venv}
case "$venv" in /*) ;; *) venv=$repo/$venv ;; esac
python=${PYTHON:-python3.11}
torch_index=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}
stamps=$venv/.slfm-setup

# A Python process of another ROS-wheel venv exports this guard; with it set, the interpreter of
# $venv would skip its own library-path set-up.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE

say() { printf '[setup] %s\n' "$*"; }
fail() {
	printf '[setup] error: %s\n' "$*" >&2
	exit 1
}

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
# Hash of the names and contents of all files below a folder.
tree_hash() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | hash_of; }
stamp_ok() { [ -f "$stamps/$1" ] && [ "$(cat "$stamps/$1")" = "$2" ]; }
stamp_set() {
	mkdir -p "$stamps"
	printf '%s\n' "$2" >"$stamps/$1"
}

# Only one set-up at a time per environment (several make targets may start one).
exec 9>"/tmp/slfm-setup-$(printf '%s' "$venv" | sha256sum | cut -c1-12).lock"
flock 9

# --- 1. Debian packages --------------------------------------------------------------------
# libmysofa1 ships a measured head (/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa) that the
# tests compare with the one in test/data.
apt_packages=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins espeak-ng libsndfile1
	libmysofa1 cmake g++)

# The venv module and the C headers of a Debian-packaged Python 3.11 come in separate packages.
if ! command -v "$python" >/dev/null 2>&1; then
	[ "$python" = python3.11 ] || fail "interpreter '$python' not found (set PYTHON to a Python 3.11)"
	apt_packages+=(python3.11 python3.11-venv python3.11-dev)
elif [ "$(command -v "$python")" = /usr/bin/python3.11 ]; then
	"$python" -c 'import ensurepip' 2>/dev/null || apt_packages+=(python3.11-venv)
	"$python" -c 'import os, sysconfig; raise SystemExit(not os.path.exists(
        os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || apt_packages+=(python3.11-dev)
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
	for pkg in "${apt_packages[@]}"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$pkg")
	done
else
	say "no dpkg on this system: make sure PortAudio, PulseAudio, libsndfile, espeak-ng, cmake," \
		"a C++ compiler and (for two tests) libmysofa's MIT KEMAR SOFA file are installed"
fi
if [ ${#missing[@]} -gt 0 ]; then
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 ||
			fail "missing Debian packages ${missing[*]}; install them as root and run again"
		sudo=(sudo)
	fi
	say "about to install these missing Debian packages with ${sudo[*]:+${sudo[*]} }apt-get:" \
		"${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
		"${missing[@]}"
fi

# --- 2. virtual environment ----------------------------------------------------------------
py=$venv/bin/python
if ! "$py" -c 'import sys; raise SystemExit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
	version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
		fail "cannot run '$python'"
	[ "$version" = 3.11 ] || fail "'$python' is Python $version; the ROS 2 wheels need 3.11 (set PYTHON)"
	[ -e "$venv" ] && say "replacing $venv (not a working Python 3.11 environment)"
	rm -rf "$venv"
	say "creating $venv with $(command -v "$python")"
	"$python" -m venv "$venv"
fi
pip=("$py" -m pip --disable-pip-version-check --quiet)

# --- 3. wheels ---------------------------------------------------------------------------------
req=$repo/requirements
wheels_hash=$(hash_of "$req/bootstrap.txt" "$req/torch.txt" "$req/ros.txt" "$req/base.txt")
if ! stamp_ok wheels "$wheels_hash"; then
	say "installing Python packages (requirements/*.txt)"
	"${pip[@]}" install -r "$req/bootstrap.txt"
	if ! "${pip[@]}" install -r "$req/torch.txt" 2>/dev/null; then
		say "torch CPU build not on the default index; using $torch_index"
		"${pip[@]}" install -r "$req/torch.txt" --index-url "$torch_index" \
			--extra-index-url https://pypi.org/simple
	fi
	"${pip[@]}" install -r "$req/ros.txt" -r "$req/base.txt" -c "$req/torch.txt"
	stamp_set wheels "$wheels_hash"
fi

# --- 4. slfm_ros in editable mode --------------------------------------------------------------
# New modules are picked up without reinstalling; entry points and metadata need a reinstall.
package_hash=$(hash_of "$repo/setup.py" "$repo/setup.cfg" "$repo/package.xml")
if ! stamp_ok package "$package_hash"; then
	say "installing slfm_ros in editable mode"
	if ! log=$("${pip[@]}" install --no-build-isolation --no-deps --editable "$repo" 2>&1); then
		printf '%s\n' "$log" >&2
		fail "editable install of slfm_ros failed"
	fi
	stamp_set package "$package_hash"
fi

# --- 5. audio_common_msgs --------------------------------------------------------------------
provided=""
IFS=: read -r -a ament_prefixes <<<"${AMENT_PREFIX_PATH:-}"
for prefix in "${ament_prefixes[@]}"; do
	if [ -n "$prefix" ] && [ "$prefix" != "$venv" ] &&
		[ -f "$prefix/share/audio_common_msgs/package.xml" ]; then
		provided=$prefix
		break
	fi
done
if [ -n "$provided" ]; then
	say "audio_common_msgs provided by $provided; not building it"
else
	interfaces_hash=$(tree_hash "$repo/interfaces/audio_common_msgs" | hash_of - "$req/ros.txt" \
		"$repo/tools/build_interfaces.sh" "$repo/tools/cmake/wheel_targets_fix.cmake")
	if ! stamp_ok interfaces "$interfaces_hash"; then
		say "building audio_common_msgs into $venv"
		bash "$repo/tools/build_interfaces.sh" "$venv" "$repo/interfaces/audio_common_msgs"
		stamp_set interfaces "$interfaces_hash"
	fi
fi

say "environment ready: $venv"

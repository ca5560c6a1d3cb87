"""The ``ros_env`` fixture isolates ROS 2 traffic of a test from every other process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "w") as handle:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(3)
"""


def _held_by_someone(domain: int) -> bool:
    lock = Path(tempfile.gettempdir()) / "slfm_ros-ros-domains" / f"{domain}.lock"
    return subprocess.run([sys.executable, "-c", TRY_LOCK, str(lock)]).returncode == 3


def test_domain_is_private_and_discovery_local(ros_env: dict[str, str]) -> None:
    domain = int(ros_env["ROS_DOMAIN_ID"])
    assert 1 <= domain <= 100
    assert os.environ["ROS_DOMAIN_ID"] == str(domain)  # rclpy.init() in this process uses it
    assert ros_env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert _held_by_someone(domain), "another test run could claim the same domain"


def test_session_and_test_domains_differ_and_are_held(ros_env: dict[str, str]) -> None:
    session_domain = os.environ.get("SLFM_TEST_SESSION_DOMAIN")
    assert session_domain is not None and session_domain != ros_env["ROS_DOMAIN_ID"]
    assert _held_by_someone(int(session_domain))

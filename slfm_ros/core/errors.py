"""Error types of slfm_ros.

Messages say what was expected, what was found, and what to change.
"""

from __future__ import annotations


class SlfmError(Exception):
    """Base class of every error slfm_ros raises on purpose."""


class InputFormatError(SlfmError):
    """Input data (audio, image, file) does not have the shape or format required."""


class ConfigError(SlfmError):
    """A configuration key is unknown, missing, or has an invalid value."""


class ModelError(SlfmError):
    """A model file is missing, corrupt, or does not match its card."""


class DatasetError(SlfmError):
    """A dataset folder is missing, empty, or inconsistent."""

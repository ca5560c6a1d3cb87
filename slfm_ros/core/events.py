"""Diagnostic events raised by the streaming pipeline on bad or unusual input.

Levels use the numbers of ``diagnostic_msgs/DiagnosticStatus`` (OK 0, WARN 1, ERROR 2) so the
node copies them without a table. ``source`` groups events into the status entries the node
publishes; ``code`` is a stable identifier (counted per code on /diagnostics, matched by tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class EventLevel(IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2


SOURCES = ("audio", "image", "estimator", "pipeline", "tracking")


@dataclass(frozen=True)
class PipelineEvent:
    """level, source (one of SOURCES), code (e.g. ``audio_gap``) and a message that says what
    was expected, what was found and what to change."""

    level: EventLevel
    source: str
    code: str
    message: str

    @staticmethod
    def warn(source: str, code: str, message: str) -> PipelineEvent:
        return PipelineEvent(EventLevel.WARN, source, code, message)

    @staticmethod
    def error(source: str, code: str, message: str) -> PipelineEvent:
        return PipelineEvent(EventLevel.ERROR, source, code, message)

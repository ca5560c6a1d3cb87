"""Settings of the streaming localizer, validated on creation.

Kept apart from ``pipeline`` so that ``estimator_setup`` (which the pipeline uses to build its
estimators) can read the settings without importing the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from slfm_ros.core.errors import ConfigError

# The interaural models a node can be given (estimator_setup.receiver_geometry).
RECEIVERS = ("free_field", "spherical_head", "measured", "calibrated")
# The classical sound-direction estimator of `estimator: classic`, the fallback and the partner
# of `estimator: auto`. Every frame counts alike: the onset-weighted "gcc_phat_onset" is far
# better for a static talker in a reverberant room, but it follows the source with the most
# onsets (a talker over music) and lags a turning robot, so it is the user's choice.
CLASSIC_AUDIO = "gcc_phat"


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of the streaming localizer; names and meanings match slfm_node's parameters
    (see ``slfm_ros/nodes/slfm_params.py`` for the documentation of each)."""

    hop_s: float = 0.1
    window_s: float = 1.0
    keyframe_interval_s: float = 0.5
    max_image_audio_skew_s: float = 0.25
    audio_stale_s: float = 1.0
    audio_buffer_s: float = 4.0
    image_buffer_s: float = 3.0
    max_pending_windows: int = 5
    silence_threshold_dbfs: float = -60.0
    min_window_fill: float = 0.9
    gap_tolerance_s: float = 0.005
    max_gap_fill_s: float = 0.5
    estimator: str = "auto"
    audio_estimator: str = CLASSIC_AUDIO
    visual_estimator: str = "orb"
    backend: str = "auto"
    model_dir: str = ""
    inference_device: str = "auto"
    model_file_path: str = ""
    engine_file_path: str = ""
    force_engine_update: bool = False
    enable_fp16: bool = False
    max_workspace_size: int = 1 << 30
    max_batch_size: int = 8
    inference_threads: int = 0
    estimator_sample_rate: int = 16000
    image_width: int = 320
    hfov_deg: float = 60.0
    camera_pitch_deg: float = 0.0
    receiver: str = "free_field"
    mic_spacing_m: float = 0.14
    head_radius_m: float = 0.0875
    hrtf_path: str = ""
    model_uses_receiver: bool = True

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ConfigError(f"pipeline config: {what}")

        need(self.hop_s > 0, f"hop_s must be > 0, got {self.hop_s}")
        need(self.window_s > 0, f"window_s must be > 0, got {self.window_s}")
        need(
            self.audio_buffer_s >= self.window_s + 2 * self.hop_s,
            f"audio_buffer_s ({self.audio_buffer_s}) must be >= window_s + 2 * hop_s "
            f"({self.window_s + 2 * self.hop_s}): raise audio_buffer_s",
        )
        need(self.keyframe_interval_s > 0, "keyframe_interval_s must be > 0")
        need(self.max_image_audio_skew_s >= 0, "max_image_audio_skew_s must be >= 0")
        need(self.max_pending_windows >= 1, "max_pending_windows must be >= 1")
        need(0.0 <= self.min_window_fill <= 1.0, "min_window_fill must be in [0, 1]")
        need(
            self.estimator in ("slfm", "classic", "auto"),
            f"estimator: slfm, classic or auto, got {self.estimator!r}",
        )
        need(self.estimator_sample_rate > 0, "estimator_sample_rate must be > 0")
        need(self.image_width >= 0, "image_width must be >= 0")
        need(
            self.receiver in RECEIVERS,
            f"receiver: {', '.join(RECEIVERS)}, got {self.receiver!r}",
        )
        need(
            self.receiver != "measured" or bool(self.hrtf_path),
            "receiver: measured needs hrtf_path, the SOFA file of the robot's measured head",
        )

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> PipelineConfig:
        """Picks the config fields out of a node's parameter dict (other keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})

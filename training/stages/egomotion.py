"""Egomotion stage: the audio network learns from the camera's own measured turns.

A robot that turns near a sound source sees its camera turn; feature matching between two
views measures that turn without any label, and a static source's azimuth must change by
minus the turn. For every pair (view 0, view i) the geometric loss 1 - cos(phi_0 - turn -
phi_i) (reflection-invariant) ties the audio predictions to the measured turn; pairs the
matcher declines leave that term. The binaural IID and channel-swap symmetry terms of the
SLfM stage keep the left/right sign and the zero of the azimuth. Only the audio network
trains; the visual network is carried along unchanged (train it afterwards with the SLfM
stage, ``slfm.train_networks: [visual]``, which then learns from this audio network).

Logged values use the simulator's labels for monitoring only: audio azimuth error (folded to
the front, degrees) and the measured turns' error (degrees, on measured pairs).
"""

from __future__ import annotations

import torch
from torch import nn

from slfm_ros.core.dsp.iid import iid_votes_torch
from slfm_ros.core.errors import DatasetError
from slfm_ros.core.models.config import ModelConfig
from slfm_ros.core.models.losses import egomotion_loss
from slfm_ros.core.sim.scene import SceneConfig
from slfm_training.config import TrainConfig
from slfm_training.data import Batch, TurnMeter, audio_features, turn_meter_for
from slfm_training.stages import (
    Stage,
    StepOutput,
    angular_error_deg,
    audio_net,
    azimuth_error_deg,
    binaural_term,
)
from slfm_training.stages.slfm import audio_predictions

AUDIO_HEAD = ("audio.head",)
AUDIO_ENCODER = ("audio.trunk", "audio.project")
# Training steps after which a run whose matcher has measured no turn at all stops: without
# measured turns only the binaural and symmetry terms would train, silently.
NO_TURN_LIMIT_STEPS = 50


class EgomotionStage(Stage):
    name = "egomotion"

    def __init__(self, cfg: TrainConfig, model_cfg: ModelConfig):
        super().__init__(cfg, model_cfg)
        self.measured_pairs = 0

    def turn_meter(self, scene: SceneConfig) -> TurnMeter:
        return turn_meter_for(self.cfg.egomotion, scene)

    def trainable(self) -> tuple[str, ...]:
        return AUDIO_HEAD + (AUDIO_ENCODER if self.cfg.egomotion.finetune else ())

    def forward(self, nets: nn.ModuleDict, batch: Batch) -> StepOutput:
        opts = self.cfg.egomotion
        stft = self.model_cfg.audio.stft_config()
        b, k = batch.size, batch.num_views
        clips = batch.audio.flatten(0, 1)
        phi, phi_swapped = audio_predictions(
            audio_net(nets), audio_features(clips, stft), opts.finetune
        )
        with torch.no_grad(), torch.autocast(clips.device.type, enabled=False):
            iid = (iid_votes_torch(clips.float(), stft) + 1.0) / 2.0
        phi, phi_swapped, iid = (t.reshape(b, k) for t in (phi, phi_swapped, iid))

        def source(t: torch.Tensor) -> torch.Tensor:
            return t[:, :1].expand(-1, k - 1).flatten()

        def target(t: torch.Tensor) -> torch.Tensor:
            return t[:, 1:].flatten()

        measured_turns = target(batch.measured_turns)
        if torch.is_grad_enabled():
            self._check_measured(int(torch.isfinite(measured_turns).sum()))
        losses = egomotion_loss(
            phi_s=source(phi),
            phi_t=target(phi),
            measured_turn=measured_turns,
            phi_s_swapped=source(phi_swapped),
            phi_t_swapped=target(phi_swapped),
            iid_target_s=source(iid),
            iid_target_t=target(iid),
            weights=(opts.geometric_weight, opts.binaural_weight, opts.symmetry_weight),
            reflection_invariant=opts.reflection_invariant,
            binaural_term=binaural_term(opts),
            turn_weighting=opts.turn_weighting,
        )
        values = {name: value.detach() for name, value in losses.items() if name != "total"}
        values["audio_mae_deg"] = azimuth_error_deg(phi.detach(), batch.azimuths).flatten()
        measured = torch.isfinite(measured_turns)
        values["measured_turn_error_deg"] = angular_error_deg(
            measured_turns[measured], target(batch.turns)[measured]
        )
        return StepOutput(losses["total"], values)

    def _check_measured(self, count: int) -> None:
        self.measured_pairs += count
        if self.measured_pairs == 0 and self.step >= NO_TURN_LIMIT_STEPS:
            opts = self.cfg.egomotion
            raise DatasetError(
                f"the {opts.detector} matcher measured no camera turn in the first "
                f"{NO_TURN_LIMIT_STEPS} training steps: the images may be too small or "
                "featureless, or the camera (egomotion.hfov_deg, pitch_deg) wrong; render "
                "larger images, try egomotion.detector: sift, or lower egomotion.min_inliers"
            )


STAGE = EgomotionStage

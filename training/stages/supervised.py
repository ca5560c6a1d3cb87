"""Supervised stage: the upper bound, trained with the simulator's angle labels.

Audio: 1 - cos(phi - azimuth) for every view's clip (optionally front/back-mirror invariant).
Visual: 1 - cos(theta - turn) for every pair (view 0, view i), in both image orders (the
reverse order's label is -turn). Encoders train too unless ``supervised.finetune`` is False.
"""

from __future__ import annotations

from torch import nn

from slfm_ros.core.models.losses import supervised_angle_loss
from training.data import Batch, audio_features
from training.stages import (
    ENCODER_PARTS,
    HEAD_PARTS,
    Stage,
    StepOutput,
    angular_error_deg,
    audio_net,
    azimuth_error_deg,
    visual_net,
)
from training.stages.slfm import audio_predictions, pair_predictions


class SupervisedStage(Stage):
    name = "supervised"

    def trainable(self) -> tuple[str, ...]:
        return HEAD_PARTS + (ENCODER_PARTS if self.cfg.supervised.finetune else ())

    def forward(self, nets: nn.ModuleDict, batch: Batch) -> StepOutput:
        opts = self.cfg.supervised
        clips = batch.audio.flatten(0, 1)
        features = audio_features(clips, self.model_cfg.audio.stft_config())
        # The swapped clips are free extra samples: their azimuth label is -azimuth.
        phi, phi_swapped = audio_predictions(audio_net(nets), features, opts.finetune)
        azimuths = batch.azimuths.flatten()
        audio_loss = 0.5 * (
            supervised_angle_loss(phi, azimuths, opts.mirror_invariant).mean()
            + supervised_angle_loss(phi_swapped, -azimuths, opts.mirror_invariant).mean()
        )
        theta, theta_reverse = pair_predictions(visual_net(nets), batch.images, opts.finetune)
        turns = batch.turns[:, 1:].flatten()
        visual_loss = 0.5 * (
            supervised_angle_loss(theta, turns).mean()
            + supervised_angle_loss(theta_reverse, -turns).mean()
        )
        loss = opts.audio_weight * audio_loss + opts.visual_weight * visual_loss
        values = {
            "audio_loss": audio_loss.detach(),
            "visual_loss": visual_loss.detach(),
            "audio_mae_deg": azimuth_error_deg(phi.detach(), azimuths),
            "camera_mae_deg": angular_error_deg(theta.detach(), turns),
        }
        return StepOutput(loss, values)


STAGE = SupervisedStage

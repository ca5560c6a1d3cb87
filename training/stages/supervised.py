"""Supervised stage: the upper bound, trained with the simulator's angle labels.

Audio: 1 - cos(phi - azimuth) for every view's clip (optionally front/back-mirror invariant).
Visual: 1 - cos(theta - turn) for every pair (view 0, view i), in both image orders (the
reverse order's label is -turn). Encoders train too unless ``supervised.finetune`` is False.
A network whose loss weight is 0 neither runs nor trains (an audio-only or visual-only bound);
the model card then lists it as untrained.
"""

from __future__ import annotations

import torch
from torch import nn

from slfm_ros.core.models.losses import supervised_angle_loss
from slfm_training.data import Batch, audio_features
from slfm_training.stages import (
    ENCODER_PARTS,
    HEAD_PARTS,
    Stage,
    StepOutput,
    angular_error_deg,
    audio_net,
    azimuth_error_deg,
    visual_net,
)
from slfm_training.stages.slfm import audio_predictions, pair_predictions


class SupervisedStage(Stage):
    name = "supervised"

    def networks(self) -> tuple[str, ...]:
        """The networks this run trains: those with a non-zero loss weight."""
        opts = self.cfg.supervised
        weights = {"audio": opts.audio_weight, "visual": opts.visual_weight}
        return tuple(name for name, weight in weights.items() if weight > 0)

    def trainable(self) -> tuple[str, ...]:
        parts = HEAD_PARTS + (ENCODER_PARTS if self.cfg.supervised.finetune else ())
        return tuple(p for p in parts if p.split(".")[0] in self.networks())

    def forward(self, nets: nn.ModuleDict, batch: Batch) -> StepOutput:
        opts = self.cfg.supervised
        loss = torch.zeros((), device=batch.audio.device)
        values: dict[str, torch.Tensor] = {}
        if "audio" in self.networks():
            clips = batch.audio.flatten(0, 1)
            features = audio_features(clips, self.model_cfg.audio.stft_config())
            # The swapped clips are free extra samples: their azimuth label is -azimuth.
            phi, phi_swapped = audio_predictions(audio_net(nets), features, opts.finetune)
            azimuths = batch.azimuths.flatten()
            audio_loss = 0.5 * (
                supervised_angle_loss(phi, azimuths, opts.mirror_invariant).mean()
                + supervised_angle_loss(phi_swapped, -azimuths, opts.mirror_invariant).mean()
            )
            loss = loss + opts.audio_weight * audio_loss
            values["audio_loss"] = audio_loss.detach()
            values["audio_mae_deg"] = azimuth_error_deg(phi.detach(), azimuths)
        if "visual" in self.networks():
            theta, theta_reverse = pair_predictions(visual_net(nets), batch.images, opts.finetune)
            turns = batch.turns[:, 1:].flatten()
            visual_loss = 0.5 * (
                supervised_angle_loss(theta, turns).mean()
                + supervised_angle_loss(theta_reverse, -turns).mean()
            )
            loss = loss + opts.visual_weight * visual_loss
            values["visual_loss"] = visual_loss.detach()
            values["camera_mae_deg"] = angular_error_deg(theta.detach(), turns)
        return StepOutput(loss, values)


STAGE = SupervisedStage

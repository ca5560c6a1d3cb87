"""Linear-probe stage: how much angle information the frozen features hold.

Two linear classifiers over ``probe.bins`` equal angle bins: one on the audio feature of each
clip (target: the source azimuth in that view), one on the visual pair feature of each pair
(view 0, view i) (target: the turn theta_i). Cross-entropy; the logged top-1 accuracies are
the probe scores. Only the probes train; the networks stay frozen in eval mode.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from slfm_training.data import Batch, audio_features
from slfm_training.stages import Stage, StepOutput, audio_net, view_pair_maps, visual_net


def angle_bins(angle: torch.Tensor, low: float, high: float, bins: int) -> torch.Tensor:
    """Class index (int64) of angles (radians) in ``bins`` equal bins over [low, high)."""
    position = (angle - low) / (high - low) * bins
    return position.floor().clamp(0, bins - 1).long()


class ProbeStage(Stage):
    name = "probe"

    def extra_modules(self) -> dict[str, nn.Module]:
        bins = self.cfg.probe.bins
        return {
            "audio_probe": nn.Linear(self.model_cfg.audio.feature_dim, bins),
            "visual_probe": nn.Linear(self.model_cfg.visual.feature_dim, bins),
        }

    def trainable(self) -> tuple[str, ...]:
        return ("audio_probe", "visual_probe")

    def forward(self, nets: nn.ModuleDict, batch: Batch) -> StepOutput:
        opts = self.cfg.probe
        clips = batch.audio.flatten(0, 1)
        with torch.no_grad():
            audio_feature = audio_net(nets).feature(
                audio_features(clips, self.model_cfg.audio.stft_config())
            )
            net = visual_net(nets)
            pair_feature = net.pair_feature_from_maps(*view_pair_maps(net, batch.images))
        audio_low, audio_high = (math.radians(v) for v in opts.audio_range_deg)
        visual_low, visual_high = (math.radians(v) for v in opts.visual_range_deg)
        audio_target = angle_bins(batch.azimuths.flatten(), audio_low, audio_high, opts.bins)
        visual_target = angle_bins(batch.turns[:, 1:].flatten(), visual_low, visual_high, opts.bins)
        audio_logits = nets["audio_probe"](audio_feature.float())
        visual_logits = nets["visual_probe"](pair_feature.float())
        audio_loss = F.cross_entropy(audio_logits, audio_target)
        visual_loss = F.cross_entropy(visual_logits, visual_target)
        values = {
            "audio_loss": audio_loss.detach(),
            "visual_loss": visual_loss.detach(),
            "audio_top1": (audio_logits.argmax(1) == audio_target).float(),
            "camera_top1": (visual_logits.argmax(1) == visual_target).float(),
        }
        return StepOutput(audio_loss + visual_loss, values)


STAGE = ProbeStage

"""Pretext stage: cross-view binauralization (trains the audio and visual encoders).

View 0 is the source view, views 1..K-1 the targets. For each target view t the U-Net gets
the STFT (real/imag) of the target's mono mix L + R and a condition vector
[audio feature of the source view's binaural clip, visual pair feature (view 0, view t)], and
predicts the STFT of L - R through a complex mask. The clips of different views are different
time windows, so the audio feature must carry the source direction, not the waveform; the
visual feature must carry the turn that moves the direction from view 0 to view t.
Loss: ``pretext.loss_weight`` x mean L1 over real/imag, averaged over the target views.
"""

from __future__ import annotations

import torch
from torch import nn

from slfm_ros.core.dsp.stft import StftConfig, stft_torch
from slfm_ros.core.models.binauralization import BinauralizationUNet
from slfm_ros.core.models.losses import binauralization_loss
from slfm_training.data import Batch, audio_features
from slfm_training.stages import (
    ENCODER_PARTS,
    Stage,
    StepOutput,
    audio_net,
    view_pair_maps,
    visual_net,
)


def complex_stft(signal: torch.Tensor, cfg: StftConfig) -> torch.Tensor:
    """(N, S) waveforms -> (N, 2, F, T) real/imag with the feature STFT's framing."""
    with torch.autocast(device_type=signal.device.type, enabled=False):
        spec = stft_torch(signal, cfg)
        return torch.view_as_real(spec).permute(0, 3, 1, 2).contiguous()


class PretextStage(Stage):
    name = "pretext"

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"binauralizer": BinauralizationUNet(self.model_cfg)}

    def trainable(self) -> tuple[str, ...]:
        return ENCODER_PARTS + ("binauralizer",)

    def forward(self, nets: nn.ModuleDict, batch: Batch) -> StepOutput:
        stft = self.model_cfg.audio.stft_config()
        k = batch.num_views
        source_feature = audio_net(nets).feature(audio_features(batch.audio[:, 0], stft))
        net = visual_net(nets)
        pair_feature = net.pair_feature_from_maps(*view_pair_maps(net, batch.images))
        condition = torch.cat([source_feature.repeat_interleave(k - 1, dim=0), pair_feature], dim=1)
        target_clips = batch.audio[:, 1:].flatten(0, 1)  # (B*(K-1), 2, S)
        mix = complex_stft(target_clips[:, 0] + target_clips[:, 1], stft)
        difference = complex_stft(target_clips[:, 0] - target_clips[:, 1], stft)
        predicted = nets["binauralizer"](mix, condition.to(mix.dtype)).float()
        per_target = binauralization_loss(predicted, difference, self.cfg.pretext.loss_weight)
        loss = per_target.mean()
        return StepOutput(loss, {"binauralization": per_target.detach()})


STAGE = PretextStage

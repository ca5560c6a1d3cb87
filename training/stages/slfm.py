"""SLfM stage: the audio and rotation heads supervise each other, without angle labels.

For every pair (view 0, view i): audio predictions phi_0, phi_i of both clips, the rotation
prediction theta(0 -> i) and its reverse theta(i -> 0), the predictions of the channel-swapped
clips, and the IID left/right targets of both clips enter
10 * geometric + 1 * binaural + 1 * symmetry (weights from the config; see
``slfm_ros.core.models.losses.slfm_total_loss``). Encoders are frozen unless ``slfm.finetune``;
``slfm.train_networks`` can hold one network fixed while the other trains, and
``slfm.audio_geometric_start_step`` keeps the geometric loss from reaching the audio network
until the rotation head has learned from it.

Logged values use the simulator's labels for monitoring only: audio azimuth error (folded to
the front, degrees) and camera-turn error (degrees). They never enter the loss.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from slfm_ros.core.dsp.iid import iid_votes_torch
from slfm_ros.core.models.audio_direction import AudioDirectionNet, swap_channels
from slfm_ros.core.models.losses import slfm_total_loss
from slfm_ros.core.models.visual_pose import VisualPoseNet
from slfm_training.data import Batch, audio_features
from slfm_training.stages import (
    ENCODER_PARTS,
    HEAD_PARTS,
    Stage,
    StepOutput,
    angular_error_deg,
    audio_net,
    azimuth_error_deg,
    binaural_term,
    grad_if,
    view_pair_maps,
    visual_net,
)


def audio_predictions(
    net: AudioDirectionNet, features: torch.Tensor, train_encoder: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """phi of clips (N, 4, F, T) and of their channel-swapped copies, each (N,) radians."""
    with grad_if(train_encoder):
        feature = net.feature(torch.cat([features, swap_channels(features)]))
    phi = torch.tanh(net.direction_logit(feature).float()) * math.pi
    plain, swapped = phi.chunk(2)
    return plain, swapped


def pair_predictions(
    net: VisualPoseNet, images: torch.Tensor, train_encoder: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """theta(0 -> i) = yaw_i - yaw_0 and theta(i -> 0) of the views of (B, K, 3, H, W) images,
    each (B * (K - 1),) radians in sample-major order. The trunk runs once per image."""
    with grad_if(train_encoder):
        map_0, map_i = view_pair_maps(net, images)
        feature = net.pair_feature_from_maps(torch.cat([map_0, map_i]), torch.cat([map_i, map_0]))
    theta = torch.tanh(net.rotation_logit(feature).float()) * (math.pi / 2)
    forward, reverse = theta.chunk(2)
    return forward, reverse


class SlfmStage(Stage):
    name = "slfm"

    def trainable(self) -> tuple[str, ...]:
        opts = self.cfg.slfm
        parts = HEAD_PARTS + (ENCODER_PARTS if opts.finetune else ())
        return tuple(p for p in parts if p.split(".")[0] in opts.train_networks)

    def _trains_encoder(self, network: str) -> bool:
        return self.cfg.slfm.finetune and network in self.cfg.slfm.train_networks

    def geometric_weight(self) -> float:
        """The geometric loss weight at the current step (0 before its start, then a ramp)."""
        opts = self.cfg.slfm
        since = self.step - opts.geometric_start_step
        if since < 0:
            return 0.0
        if opts.geometric_warmup_steps <= 0:
            return opts.geometric_weight
        return opts.geometric_weight * min(1.0, since / opts.geometric_warmup_steps)

    def forward(self, nets: nn.ModuleDict, batch: Batch) -> StepOutput:
        opts = self.cfg.slfm
        stft = self.model_cfg.audio.stft_config()
        b, k = batch.size, batch.num_views
        clips = batch.audio.flatten(0, 1)  # (B*K, 2, S)
        phi, phi_swapped = audio_predictions(
            audio_net(nets), audio_features(clips, stft), self._trains_encoder("audio")
        )
        with torch.no_grad(), torch.autocast(clips.device.type, enabled=False):
            iid = (iid_votes_torch(clips.float(), stft) + 1.0) / 2.0
        phi, phi_swapped, iid = (t.reshape(b, k) for t in (phi, phi_swapped, iid))

        theta, theta_reverse = pair_predictions(
            visual_net(nets), batch.images, self._trains_encoder("visual")
        )

        def source(t: torch.Tensor) -> torch.Tensor:
            return t[:, :1].expand(-1, k - 1).flatten()

        def target(t: torch.Tensor) -> torch.Tensor:
            return t[:, 1:].flatten()

        losses = slfm_total_loss(
            phi_s=source(phi),
            phi_t=target(phi),
            theta_hat=theta,
            theta_hat_reverse=theta_reverse,
            phi_s_swapped=source(phi_swapped),
            phi_t_swapped=target(phi_swapped),
            iid_target_s=source(iid),
            iid_target_t=target(iid),
            weights=(self.geometric_weight(), opts.binaural_weight, opts.symmetry_weight),
            reflection_invariant=opts.reflection_invariant,
            geometric_trains_audio=self.step >= opts.audio_geometric_start_step,
            binaural_term=binaural_term(opts),
        )
        values = {name: value.detach() for name, value in losses.items() if name != "total"}
        values["audio_mae_deg"] = azimuth_error_deg(phi.detach(), batch.azimuths).flatten()
        values["camera_mae_deg"] = angular_error_deg(theta.detach(), target(batch.turns))
        return StepOutput(losses["total"], values)


STAGE = SlfmStage

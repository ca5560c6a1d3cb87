"""Cylinder pose network: relative camera yaw from two images of a camera that only turns.

The front end has no weights; it uses what is known about the camera (intrinsics and pitch):
1. Both images are resampled onto the camera's level cylinder with a fixed sampling grid
   (``grid_sample``; ``geometry.cylinder``), where a yaw is a column shift.
2. Dense cue, for views that share some field of view: the masked normalised cross-correlation
   (NCC) of the two cylinders over every shift in [-max_turn, max_turn], on gradient magnitude
   and on intensity, each shift normalised over the cells both views see.
3. Global cue, for views that share none: the world direction psi (mod 180 deg) of horizontal
   edges. On the cylinder, a horizontal 3-D line with direction psi follows
   tan(e) ~ sin(a - psi), so each edge cell's local slope names psi: tan(a - psi) =
   sin(e) cos(e) / (de/da). Every view gets a histogram of psi (each cell adds its edge
   strength, split between the two nearest bins), and the two histograms' circular
   correlation at shift theta is high when the views see the same dominant directions turned
   by theta (walls, floor boards, tiles, shelves, facades: everything built in straight
   lines). A second curve folds the histograms to a 90-deg period (perpendicular directions,
   as in most buildings).
Curves over the shifts: [NCC gradient, NCC of the gradient smoothed across rows (tolerant
of a small tilt), NCC intensity, overlap, sqrt overlap, direction correlation, its 90-deg
part]. A small network of dilated 1-D convolutions along the shift
axis, with a global context vector, maps them to one logit per shift bin (a distribution over
the yaw) and a sub-bin offset. It is made exactly antisymmetric: swapping the images reverses
every curve, and the head's output is averaged with its mirrored output on the reversed curves,
so a swapped pair gives exactly the negated yaw.

Convention: ``forward(img_0, img_1)`` returns theta = yaw_1 - yaw_0 in radians (REP-103, a
turn to the left is positive), like ``visual_pose.VisualPoseNet``. Inputs are float tensors
(B, 3, H, W) from ``preprocess_images_numpy`` (``visual_pose``) with this model's config:
area-resized to ``image_width`` x ``image_height`` and ImageNet-normalised.

Another camera: ``set_camera(hfov_deg, pitch_deg, height, width)`` rebuilds the sampling grid
(the learned head does not depend on the camera: it sees curves over shifts). For a graph that
takes the camera at run time, export ``CameraInputPoseNet``, whose extra inputs come from
``camera_tensors_numpy``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.estimators.cylinder_yaw import vertical_kernel
from slfm_ros.core.geometry.cylinder import cylinder_grid, torch_sampling_grid
from slfm_ros.core.models.cylinder_config import CylinderPoseConfig
from slfm_ros.core.models.visual_pose import IMAGENET_MEAN, IMAGENET_STD

LUMA = (0.299, 0.587, 0.114)
CURVE_NAMES = (
    "ncc_gradient",
    "ncc_gradient_smooth",
    "ncc_intensity",
    "overlap",
    "overlap_sqrt",
    "direction",
    "direction90",
)
_EPS = 1e-12


class CameraTensors(NamedTuple):
    """Everything the front end needs to know about the camera, as arrays.

    sample_grid: (1, Hc, Wc, 2) float32 ``grid_sample`` coordinates of the cylinder cells.
    mask:        (1, 1, Hc, Wc) float32, 1 where a cell sees the image.
    azimuth:     (1, 1, 1, Wc) float32 azimuth of each cylinder column, radians.
    elevation:   (1, 1, Hc, 1) float32 elevation of each cylinder row, radians.
    """

    sample_grid: Any
    mask: Any
    azimuth: Any
    elevation: Any


def camera_tensors_numpy(cfg: CylinderPoseConfig) -> CameraTensors:
    """The camera arrays (float32 numpy) of ``cfg``'s camera, for ``CameraInputPoseNet``."""
    grid = cylinder_grid(
        cfg.image_width,
        cfg.image_height,
        math.radians(cfg.pitch_deg),
        math.radians(cfg.step_deg),
        hfov=math.radians(cfg.hfov_deg),
    )
    f32 = np.float32
    return CameraTensors(
        torch_sampling_grid(grid)[None].astype(f32),
        grid.mask[None, None].astype(f32),
        grid.azimuth[None, None, None, :].astype(f32),
        grid.elevation[None, None, :, None].astype(f32),
    )


def _erode(mask: torch.Tensor) -> torch.Tensor:
    return 1.0 - F.max_pool2d(1.0 - mask, 3, stride=1, padding=1)


def _standardise(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, C, R, W) maps moved to zero mean and unit variance over the mask's cells."""
    count = torch.clamp(mask.sum(dim=(2, 3), keepdim=True), min=1.0)
    mean = (values * mask).sum(dim=(2, 3), keepdim=True) / count
    centred = (values - mean) * mask
    std = torch.sqrt((centred * centred).sum(dim=(2, 3), keepdim=True) / count + _EPS)
    return centred / std


def diagonal_correlation(x: torch.Tensor, y: torch.Tensor, max_shift: int) -> torch.Tensor:
    """corr[k] = sum_{r, j} x[r, j - k] y[r, j] for k = -max_shift..max_shift.

    x, y: (N, R, W). Returns (N, 2 max_shift + 1); shifts beyond the width read 0. One matmul
    gives every column pair; the diagonals are summed by skewing the (W, W) product.
    """
    n, _, width = x.shape
    gram = torch.bmm(y.transpose(1, 2), torch.flip(x, dims=[2]))  # [j, W-1-i] = <y_j, x_i>
    # Row j moved right by j: anti-diagonal j + i' becomes column j + i'.
    padded = F.pad(gram, (0, width))
    skewed = padded.reshape(n, 2 * width * width)[:, : width * (2 * width - 1)]
    sums = skewed.reshape(n, width, 2 * width - 1).sum(dim=1)  # index W - 1 + k
    zeros = sums.new_zeros((n, max_shift))
    extended = torch.cat([zeros, sums, zeros], dim=1)
    return extended[:, width - 1 : width + 2 * max_shift]


class ResidualDilated(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(F.relu(self.conv(F.relu(x))))


class ShiftHead(nn.Module):
    """Curves over shifts (B, C, S) -> (logit, offset) per shift, (B, 2, S)."""

    def __init__(self, in_channels: int, cfg: CylinderPoseConfig) -> None:
        super().__init__()
        self.inp = nn.Conv1d(in_channels + 1, cfg.channels, 1)
        self.blocks = nn.ModuleList(ResidualDilated(cfg.channels, d) for d in cfg.dilations)
        self.context = (
            nn.Sequential(
                nn.Linear(2 * cfg.channels, cfg.context_dim),
                nn.ReLU(),
                nn.Linear(cfg.context_dim, cfg.channels),
            )
            if cfg.context_dim > 0
            else None
        )
        self.out = nn.Conv1d(cfg.channels, 2, 1)
        self.context_after = len(cfg.dilations) // 2

    def forward(self, curves: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        batch = curves.shape[0]
        x = self.inp(torch.cat([curves, position.expand(batch, -1, -1)], dim=1))
        for index, block in enumerate(self.blocks):
            if index == self.context_after and self.context is not None:
                pooled = torch.cat([x.amax(dim=2), x.mean(dim=2)], dim=1)
                x = x + self.context(pooled).unsqueeze(2)
            x = block(x)
        return self.out(F.relu(x))


class CylinderPoseNet(nn.Module):
    """Relative camera yaw from two images; input (B, 3, H, W) ImageNet-normalised."""

    # Buffers (not saved in the state_dict: they follow from the config and the camera).
    bin_centers_rad: torch.Tensor  # (n_bins,) yaw of each bin, radians
    position: torch.Tensor
    grey_weight: torch.Tensor
    grey_bias: torch.Tensor
    sobel: torch.Tensor
    vertical_blur: torch.Tensor
    direction_cos: torch.Tensor
    direction_sin: torch.Tensor
    harmonic_weight: torch.Tensor
    harmonic_even: torch.Tensor
    harmonic_cos: torch.Tensor
    harmonic_sin: torch.Tensor
    camera_sample_grid: torch.Tensor
    camera_mask: torch.Tensor
    camera_azimuth: torch.Tensor
    camera_elevation: torch.Tensor

    def __init__(self, cfg: CylinderPoseConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else CylinderPoseConfig()
        cfg = self.cfg
        step = math.radians(cfg.step_deg)
        shifts = torch.arange(-cfg.max_shift, cfg.max_shift + 1, dtype=torch.float64) * step
        self.register_buffer("bin_centers_rad", shifts.float(), persistent=False)
        self.register_buffer(
            "position",
            (shifts.abs() / math.radians(cfg.max_turn_deg)).float()[None, None],
            persistent=False,
        )
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        luma = torch.tensor(LUMA).view(1, 3, 1, 1)
        # grey = sum_c luma_c (x_c std_c + mean_c): one 1x1 convolution.
        self.register_buffer("grey_weight", (luma * std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("grey_bias", (luma * mean).sum().view(1), persistent=False)
        sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
        self.register_buffer(
            "sobel", torch.stack([sobel, sobel.t()]).unsqueeze(1), persistent=False
        )
        sigma_rows = cfg.vertical_blur_deg / (cfg.step_deg * cfg.row_pool)
        blur = vertical_kernel(sigma_rows) if sigma_rows > 0 else np.ones((1, 1), np.float32)
        self.register_buffer("vertical_blur", torch.from_numpy(blur)[None, None], persistent=False)
        # Direction histograms: bins of psi over [0, 180) deg, step_deg wide, compared through
        # their circular harmonics k = 1..K (period 180 deg), weighted by the spectrum of a
        # Gaussian smoothing; harmonics beyond K carry < 1e-3 of that weight.
        bins = int(round(180.0 / cfg.step_deg))
        sigma_turns = cfg.direction_smoothing_deg / 180.0
        k_max = min(
            bins // 2 - 1,
            int(math.ceil(math.sqrt(2.0 * math.log(1e3)) / (2 * math.pi * sigma_turns))),
        )
        k = torch.arange(1, k_max + 1, dtype=torch.float64)
        phase = 2.0 * math.pi * k[None, :] * torch.arange(bins, dtype=torch.float64)[:, None] / bins
        self.register_buffer("direction_cos", torch.cos(phase).float(), persistent=False)
        self.register_buffer("direction_sin", torch.sin(phase).float(), persistent=False)
        weight = torch.exp(-0.5 * (2.0 * math.pi * k * sigma_turns) ** 2) ** 2
        self.register_buffer("harmonic_weight", weight.float(), persistent=False)
        self.register_buffer("harmonic_even", (k % 2 == 0).float(), persistent=False)
        # A turn theta moves psi by theta: harmonic k turns by 2 pi k theta / 180 deg.
        angles = 2.0 * k[:, None] * shifts[None, :]
        self.register_buffer("harmonic_cos", torch.cos(angles).float(), persistent=False)
        self.register_buffer("harmonic_sin", torch.sin(angles).float(), persistent=False)
        self.head = ShiftHead(len(CURVE_NAMES), cfg)
        self.set_camera(cfg.hfov_deg, cfg.pitch_deg, cfg.image_height, cfg.image_width)

    # ------------------------------------------------------------------------------ camera

    def set_camera(self, hfov_deg: float, pitch_deg: float, height: int, width: int) -> None:
        """Rebuild the sampling grid for images of ``width`` x ``height`` px with this
        horizontal FOV and pitch (degrees). Inputs must then have that size."""
        cfg = self.cfg.with_camera(hfov_deg, pitch_deg, height, width)
        arrays = camera_tensors_numpy(cfg)
        device = self.bin_centers_rad.device
        for name, value in zip(CameraTensors._fields, arrays, strict=True):
            self.register_buffer(
                f"camera_{name}", torch.from_numpy(value).to(device), persistent=False
            )
        self.cfg = cfg

    def camera_tensors(self) -> CameraTensors:
        return CameraTensors(*(getattr(self, f"camera_{name}") for name in CameraTensors._fields))

    # --------------------------------------------------------------------------- front end

    def _check(self, image: torch.Tensor, height: int, width: int) -> None:
        if image.ndim != 4 or image.shape[1] != 3:
            raise InputFormatError(
                f"CylinderPoseNet: expected images (B, 3, H, W), got {tuple(image.shape)}"
            )
        if not torch.jit.is_tracing() and tuple(image.shape[2:]) != (height, width):
            raise InputFormatError(
                f"CylinderPoseNet: expected {width}x{height} images, got "
                f"{image.shape[3]}x{image.shape[2]}; preprocess them with this model's config "
                "or call set_camera for this image size"
            )

    def _cylinder(self, images: torch.Tensor, camera: CameraTensors) -> torch.Tensor:
        """Grey cylinders (N, 1, Hc, Wc) of images (N, 3, H, W), zero outside the mask."""
        grey = F.conv2d(images, self.grey_weight) + self.grey_bias
        grid = camera.sample_grid.expand(images.shape[0], -1, -1, -1)
        sampled = F.grid_sample(
            grey, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return sampled * camera.mask

    def _view_features(
        self, cylinder: torch.Tensor, camera: CameraTensors
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(maps (N, 3, R, W): gradient, vertically smoothed gradient, intensity; their pooled
        mask (1, 1, R, W)) for the NCC, and the direction histogram's harmonics."""
        cfg = self.cfg
        inner = _erode(camera.mask)
        grads = F.conv2d(cylinder, self.sobel, padding=1)
        g_col, g_row = grads[:, 0:1], grads[:, 1:2]
        magnitude = torch.sqrt(g_col * g_col + g_row * g_row + _EPS) * inner
        pooled_mask = (F.avg_pool2d(inner, (cfg.row_pool, 1)) > 0.999).float()
        gradient = F.avg_pool2d(magnitude, (cfg.row_pool, 1)) * pooled_mask
        intensity = F.avg_pool2d(cylinder * inner, (cfg.row_pool, 1)) * pooled_mask
        # Masked blur across rows (estimators.cylinder_yaw.blur_rows): tilt tolerance.
        pad = (self.vertical_blur.shape[2] // 2, 0)
        smooth = F.conv2d(gradient, self.vertical_blur, padding=pad)
        weight = F.conv2d(pooled_mask, self.vertical_blur, padding=pad)
        smooth = smooth / torch.clamp(weight, min=1e-6) * pooled_mask
        maps = torch.cat([gradient, smooth, intensity], dim=1)
        return maps, pooled_mask, self._direction_histogram(g_col, g_row, inner, camera)

    def _direction_histogram(
        self, g_col: torch.Tensor, g_row: torch.Tensor, inner: torch.Tensor, camera: CameraTensors
    ) -> torch.Tensor:
        """Harmonics (N, 2, K) of the histogram of the world direction psi of the edges."""
        elevation = camera.elevation
        # Edge slope vector whose angle is beta = a - psi (mod pi); see the module docstring.
        vx = -g_col
        vy = torch.sin(elevation) * torch.cos(elevation) * g_row
        # (The epsilon keeps atan2 away from 0 / 0 where a runtime builds it from atan(y / x).)
        two_beta = torch.atan2(2.0 * vx * vy, vx * vx - vy * vy + _EPS)
        turns = (2.0 * camera.azimuth - two_beta) / (2.0 * math.pi)  # 2 psi in turns
        bins = self.direction_cos.shape[0]
        position = ((turns - torch.floor(turns)) * bins).flatten(1)
        lower = torch.floor(position)
        frac = position - lower
        lower_index = torch.clamp(lower.long(), 0, bins - 1)
        upper_index = torch.where(lower_index + 1 >= bins, lower_index + 1 - bins, lower_index + 1)
        weight = (vy.abs() * inner).flatten(1)
        histogram = torch.zeros(weight.shape[0], bins, dtype=weight.dtype, device=weight.device)
        histogram = histogram.scatter_add(1, lower_index, weight * (1.0 - frac))
        histogram = histogram.scatter_add(1, upper_index, weight * frac)
        # Harmonics H_k = sum_j h_j exp(-i 2 pi k j / bins): (N, 2, K), real and imaginary.
        return torch.stack(
            [histogram @ self.direction_cos, -(histogram @ self.direction_sin)], dim=1
        )

    def _ncc_curves(
        self, f0: torch.Tensor, f1: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked NCC over shifts of (B, C, R, W) maps (zero outside ``mask`` (1, 1, R, W)).

        Returns ncc (B, C, S) and overlap (B, 1, S): the shared cell count over its value at
        shift 0. ncc is 0 where the overlap is below ``cfg.min_overlap``.
        """
        batch, channels, rows, width = f0.shape
        # Standardised over each view's own cells first: the NCC does not change, and the sums
        # below stay well conditioned in float32.
        f0, f1 = _standardise(f0, mask), _standardise(f1, mask)
        m1 = mask.expand(batch, 1, rows, width)
        mc = mask.expand(batch, channels, rows, width)
        # Pairs (x shifted, y): (m, m) count, (a, m) s0, (m, b) s1, (a^2, m) s00, (m, b^2) s11,
        # (a, b) s01, with a = f0 and b = f1.
        x = torch.cat([m1, f0, mc, f0 * f0, mc, f0], dim=1)
        y = torch.cat([m1, mc, f1, mc, f1 * f1, f1], dim=1)
        terms = 1 + 5 * channels
        corr = diagonal_correlation(
            x.reshape(batch * terms, rows, width),
            y.reshape(batch * terms, rows, width),
            self.cfg.max_shift,
        ).reshape(batch, terms, -1)
        count = corr[:, :1]
        s0, s1, s00, s11, s01 = torch.split(corr[:, 1:], channels, dim=1)
        safe = torch.clamp(count, min=1.0)
        mean_0, mean_1 = s0 / safe, s1 / safe
        cov = s01 / safe - mean_0 * mean_1
        var_0 = torch.clamp(s00 / safe - mean_0 * mean_0, min=0.0)
        var_1 = torch.clamp(s11 / safe - mean_1 * mean_1, min=0.0)
        ncc = cov / torch.sqrt(var_0 * var_1 + _EPS)
        centre = count[:, :, self.cfg.max_shift : self.cfg.max_shift + 1]
        overlap = count / torch.clamp(centre, min=1.0)
        ncc = torch.where(overlap >= self.cfg.min_overlap, ncc, torch.zeros_like(ncc))
        return ncc, overlap

    def _direction_curves(self, h0: torch.Tensor, h1: torch.Tensor) -> torch.Tensor:
        """Circular correlation coefficients of two smoothed direction histograms, given by
        their harmonics (B, 2, K), at every shift: (B, 2, S), over the full 180-deg period
        and folded to a 90-deg period (even harmonics only)."""
        # conj(H1_k) H0_k, real and imaginary parts.
        re = h1[:, 0] * h0[:, 0] + h1[:, 1] * h0[:, 1]
        im = h1[:, 0] * h0[:, 1] - h1[:, 1] * h0[:, 0]
        power_0, power_1 = (h0 * h0).sum(dim=1), (h1 * h1).sum(dim=1)
        out = []
        for weight in (self.harmonic_weight, self.harmonic_weight * self.harmonic_even):
            norm = torch.sqrt(
                (power_0 * weight).sum(1, keepdim=True) * (power_1 * weight).sum(1, keepdim=True)
                + _EPS
            )
            # Re[conj(H1_k) H0_k exp(i 2k theta)] summed over k, for every shift theta.
            corr = (re * weight) @ self.harmonic_cos - (im * weight) @ self.harmonic_sin
            out.append(corr / norm)
        return torch.stack(out, dim=1)

    def curves_with_camera(
        self, img_0: torch.Tensor, img_1: torch.Tensor, camera: CameraTensors
    ) -> torch.Tensor:
        """The front end's curves over shifts (B, len(CURVE_NAMES), n_bins); no weights."""
        batch = img_0.shape[0]
        cylinders = self._cylinder(torch.cat([img_0, img_1], dim=0), camera)
        maps, pooled_mask, histograms = self._view_features(cylinders, camera)
        ncc, overlap = self._ncc_curves(maps[:batch], maps[batch:], pooled_mask)
        direction = self._direction_curves(histograms[:batch], histograms[batch:])
        return torch.cat([ncc, overlap, torch.sqrt(overlap), direction], dim=1)

    def curves(self, img_0: torch.Tensor, img_1: torch.Tensor) -> torch.Tensor:
        """Front-end curves (B, len(CURVE_NAMES), n_bins) for this model's camera."""
        self._check(img_0, self.cfg.image_height, self.cfg.image_width)
        self._check(img_1, self.cfg.image_height, self.cfg.image_width)
        return self.curves_with_camera(img_0, img_1, self.camera_tensors())

    # -------------------------------------------------------------------------------- head

    def head_outputs(self, curves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, offsets), each (B, n_bins), made antisymmetric under swapping the views:
        the curves of a swapped pair are the reversed curves, and so are its logits, while
        its offsets are reversed and negated."""
        batch = curves.shape[0]
        both = self.head(torch.cat([curves, torch.flip(curves, dims=[2])], dim=0), self.position)
        direct, mirrored = both[:batch], torch.flip(both[batch:], dims=[2])
        logits = 0.5 * (direct[:, 0] + mirrored[:, 0])
        offsets = 0.25 * (torch.tanh(direct[:, 1]) - torch.tanh(mirrored[:, 1]))
        return logits, offsets

    def raw_head_outputs(self, curves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, offsets) of the head alone, without the mirror average of
        ``head_outputs``: half the cost, for training with mirrored pairs as augmentation."""
        out = self.head(curves, self.position)
        return out[:, 0], 0.5 * torch.tanh(out[:, 1])

    def decode(
        self, logits: torch.Tensor, offsets: torch.Tensor, curves: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(theta (B,) radians, confidence (B,) in [0, 1]) from the head's outputs: the most
        likely bin plus its offset (at most half a bin), or the distribution's median bin when
        that lies farther than ``confidence_window_deg`` from it; confidence = probability
        mass within ``confidence_window_deg`` of the most likely bin.

        curves: the front end's curves of the same pairs. Where the gradient NCC has a clear
        local peak (>= ``refine_min_ncc``) within ``refine_window_deg`` of that bin, theta is
        the vertex of the parabola through the peak and its neighbours instead: the dense
        correlation locates a shared view more precisely than any bin.
        """
        mode = torch.argmax(logits, dim=1, keepdim=True)
        step = math.radians(self.cfg.step_deg)
        position = mode.squeeze(1).to(logits.dtype) + offsets.gather(1, mode).squeeze(1)
        if curves is not None:
            position = self._refine_on_ncc(curves[:, 0], mode, position)
        probability = torch.softmax(logits, dim=1)
        window = int(round(self.cfg.confidence_window_deg / self.cfg.step_deg))
        index = torch.arange(logits.shape[1], device=logits.device).unsqueeze(0)
        near = (torch.abs(index - mode) <= window).to(logits.dtype)
        confidence = (probability * near).sum(dim=1)
        # The median of the distribution has the least expected absolute error; it differs
        # from the mode only when the distribution has several modes (e.g. a turn whose sign
        # the views do not tell): then it is the answer.
        below = (torch.cumsum(probability, dim=1) < 0.5).to(logits.dtype).sum(dim=1)
        median = torch.clamp(below, max=logits.shape[1] - 1)
        spread = torch.abs(median - mode.squeeze(1).to(logits.dtype)) > window
        position = torch.where(spread, median, position)
        theta = (position - self.cfg.max_shift) * step
        return theta, confidence

    def _refine_on_ncc(
        self, ncc: torch.Tensor, best: torch.Tensor, position: torch.Tensor
    ) -> torch.Tensor:
        """Bin positions (B,) moved onto the NCC peak near ``best`` where there is one."""
        bins = ncc.shape[1]
        reach = max(1, int(round(self.cfg.refine_window_deg / self.cfg.step_deg)))
        around = torch.arange(-reach, reach + 1, device=ncc.device).unsqueeze(0)
        window = torch.clamp(best + around, 1, bins - 2)
        values = ncc.gather(1, window)
        peak = window.gather(1, torch.argmax(values, dim=1, keepdim=True))  # (B, 1)
        left = ncc.gather(1, peak - 1).squeeze(1)
        mid = ncc.gather(1, peak).squeeze(1)
        right = ncc.gather(1, peak + 1).squeeze(1)
        curvature = left - 2.0 * mid + right
        is_peak = (
            (mid >= left) & (mid >= right) & (curvature < 0) & (mid >= self.cfg.refine_min_ncc)
        )
        vertex = 0.5 * (left - right) / torch.where(is_peak, curvature, -torch.ones_like(mid))
        refined = peak.squeeze(1).to(position.dtype) + torch.clamp(vertex, -0.5, 0.5)
        return torch.where(is_peak, refined, position)

    def yaw_logits(self, img_0: torch.Tensor, img_1: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_bins) of the yaw bins centred on ``bin_centers_rad``."""
        return self.head_outputs(self.curves(img_0, img_1))[0]

    def predict(
        self, img_0: torch.Tensor, img_1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(theta (B,) radians, confidence (B,))."""
        curves = self.curves(img_0, img_1)
        return self.decode(*self.head_outputs(curves), curves)

    def forward(self, img_0: torch.Tensor, img_1: torch.Tensor) -> torch.Tensor:
        """theta = yaw_1 - yaw_0 in radians, shape (B,), in [-max_turn, max_turn]."""
        return self.predict(img_0, img_1)[0]


class CameraInputPoseNet(nn.Module):
    """A ``CylinderPoseNet`` whose camera arrays are inputs, for graphs that must follow the
    camera at run time: ``forward(img_0, img_1, sample_grid, mask, azimuth, elevation)`` ->
    (theta, confidence, logits). The arrays come from ``camera_tensors_numpy``."""

    def __init__(self, net: CylinderPoseNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self,
        img_0: torch.Tensor,
        img_1: torch.Tensor,
        sample_grid: torch.Tensor,
        mask: torch.Tensor,
        azimuth: torch.Tensor,
        elevation: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        camera = CameraTensors(sample_grid, mask, azimuth, elevation)
        curves = self.net.curves_with_camera(img_0, img_1, camera)
        logits, offsets = self.net.head_outputs(curves)
        theta, confidence = self.net.decode(logits, offsets, curves)
        return theta, confidence, logits

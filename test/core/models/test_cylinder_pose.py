"""CylinderPoseNet: config, front end against the numpy reference, antisymmetry, ONNX parity."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.cylinder_yaw import CylinderNccYaw
from slfm_ros.core.geometry.panorama import crop_perspective
from slfm_ros.core.models.cylinder_pose import (
    CURVE_NAMES,
    CameraInputPoseNet,
    CylinderPoseConfig,
    CylinderPoseNet,
    camera_tensors_numpy,
)
from slfm_ros.core.models.visual_pose import preprocess_images_numpy
from slfm_ros.core.sim.panoramas import ProceduralPanoramas

PITCH = math.radians(-22.5)
HFOV = math.radians(60)


@pytest.fixture(scope="module")
def views() -> tuple[list[np.ndarray], list[float]]:
    """Views of one procedural world at yaws 0.4 + [0, 30, -45, 80] deg."""
    cv2.setNumThreads(1)
    pano = ProceduralPanoramas(width=1024, seed=5).panorama(2, "test")
    yaws = [0.4 + math.radians(d) for d in (0.0, 30.0, -45.0, 80.0)]
    return [crop_perspective(pano, y, PITCH, HFOV) for y in yaws], yaws


@pytest.fixture(scope="module")
def net() -> CylinderPoseNet:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return CylinderPoseNet(CylinderPoseConfig(channels=8, context_dim=8)).eval()


def batch(images: list[np.ndarray], net: CylinderPoseNet) -> torch.Tensor:
    return torch.from_numpy(preprocess_images_numpy(images, net.cfg))


def test_config_round_trip_and_unknown_keys() -> None:
    cfg = CylinderPoseConfig(step_deg=1.0, dilations=(1, 3))
    assert CylinderPoseConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.n_bins == 181 and cfg.to_dict()["dilations"] == [1, 3]
    with pytest.raises(ConfigError, match="unknown key"):
        CylinderPoseConfig.from_dict({"step": 0.5})
    with pytest.raises(ConfigError, match="step_deg"):
        CylinderPoseConfig(step_deg=0.7)  # does not divide 90 deg
    with pytest.raises(ConfigError, match="hfov_deg"):
        CylinderPoseConfig(hfov_deg=170.0)


def test_outputs_and_bins(net: CylinderPoseNet, views) -> None:
    images, _ = views
    x = batch(images, net)
    theta = net(x[:1].expand(3, -1, -1, -1), x[1:])
    logits = net.yaw_logits(x[:1].expand(3, -1, -1, -1), x[1:])
    assert theta.shape == (3,) and logits.shape == (3, net.cfg.n_bins)
    assert net.bin_centers_rad.shape == (net.cfg.n_bins,)
    assert float(net.bin_centers_rad[0]) == pytest.approx(-math.pi / 2)
    assert torch.all(theta.abs() <= math.pi / 2 + 1e-6)
    with pytest.raises(InputFormatError, match="160x120"):
        net(torch.zeros(1, 3, 240, 320), torch.zeros(1, 3, 240, 320))


def test_front_end_matches_the_numpy_reference(net: CylinderPoseNet, views) -> None:
    images, yaws = views
    x = batch(images, net)
    with torch.no_grad():
        curves = net.curves(x[:1].expand(3, -1, -1, -1), x[1:]).numpy()
    assert curves.shape == (3, len(CURVE_NAMES), net.cfg.n_bins)
    sharp, smooth = CylinderNccYaw(), CylinderNccYaw(vertical_blur_deg=net.cfg.vertical_blur_deg)
    column = {name: index for index, name in enumerate(CURVE_NAMES)}
    for i in range(3):
        match = sharp.match(images[0], images[i + 1])
        np.testing.assert_allclose(curves[i, column["overlap"]], match.overlap, atol=1e-6)
        shared = match.overlap > 0.1
        np.testing.assert_allclose(curves[i, 0][shared], match.ncc[shared], atol=1e-3)
        blurred = smooth.match(images[0], images[i + 1]).ncc
        np.testing.assert_allclose(curves[i, 1][shared], blurred[shared], atol=1e-3)
    # Views that share a view peak at their turn; the 80-deg pair shares none.
    for i, turn in ((0, yaws[1] - yaws[0]), (1, yaws[2] - yaws[0])):
        peak = float(net.bin_centers_rad[int(np.argmax(curves[i, 0]))])
        assert peak == pytest.approx(turn, abs=math.radians(0.5))
    direction = curves[:, column["direction"] :]
    assert np.all(direction <= 1.0 + 1e-5) and np.all(direction >= -1.0 - 1e-5)


def test_swapped_pair_gives_the_negated_turn(net: CylinderPoseNet, views) -> None:
    images, _ = views
    x = batch(images, net)
    a, b = x[:1].expand(3, -1, -1, -1), x[1:]
    with torch.no_grad():
        forward, conf_f = net.predict(a, b)
        backward, conf_b = net.predict(b, a)
        logits_f, logits_b = net.yaw_logits(a, b), net.yaw_logits(b, a)
    torch.testing.assert_close(backward, -forward, atol=1e-5, rtol=0)
    torch.testing.assert_close(conf_b, conf_f, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits_b, torch.flip(logits_f, dims=[1]), atol=1e-4, rtol=0)


def test_another_camera(net: CylinderPoseNet) -> None:
    pano = ProceduralPanoramas(width=1024, seed=6).panorama(0, "test")
    other = CylinderPoseNet(net.cfg)
    other.load_state_dict(net.state_dict())
    other.set_camera(80.0, -10.0, 96, 128)
    turn = math.radians(25.0)
    images = [
        crop_perspective(pano, y, math.radians(-10.0), math.radians(80.0), 256, 192)
        for y in (1.0, 1.0 + turn)
    ]
    x = batch(images, other)
    assert x.shape[2:] == (96, 128)
    with torch.no_grad():
        curves = other.curves(x[:1], x[1:])
    peak = float(other.bin_centers_rad[int(torch.argmax(curves[0, 0]))])
    assert peak == pytest.approx(turn, abs=math.radians(0.6))
    assert other.cfg.hfov_deg == 80.0 and net.cfg.hfov_deg == 60.0


def test_onnx_export_matches_torch(net: CylinderPoseNet, views, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    images, _ = views
    x = batch(images, net)
    a, b = x[:1].expand(3, -1, -1, -1).contiguous(), x[1:].contiguous()
    model = CameraInputPoseNet(net).eval()
    camera = [torch.from_numpy(v) for v in camera_tensors_numpy(net.cfg)]
    path = tmp_path / "cylinder_pose.onnx"
    names = ["img_0", "img_1", "sample_grid", "mask", "azimuth", "elevation"]
    dynamic = {
        "img_0": {0: "batch", 2: "height", 3: "width"},
        "img_1": {0: "batch", 2: "height", 3: "width"},
        "sample_grid": {1: "rows", 2: "cols"},
        "mask": {2: "rows", 3: "cols"},
        "azimuth": {3: "cols"},
        "elevation": {2: "rows"},
    }
    torch.onnx.export(
        model,
        (a, b, *camera),
        str(path),
        opset_version=17,
        input_names=names,
        output_names=["theta", "confidence", "logits"],
        dynamic_axes=dynamic,
        dynamo=False,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(img_0: torch.Tensor, img_1: torch.Tensor, cam: list) -> list[np.ndarray]:
        feeds = dict(zip(names, [img_0.numpy(), img_1.numpy(), *cam], strict=True))
        return session.run(None, feeds)

    theta, confidence, logits = run(a, b, [c.numpy() for c in camera])
    with torch.no_grad():
        ref_theta, ref_conf = net.predict(a, b)
        ref_logits = net.yaw_logits(a, b)
    np.testing.assert_allclose(logits, ref_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(theta, ref_theta.numpy(), atol=1e-5)
    np.testing.assert_allclose(confidence, ref_conf.numpy(), atol=1e-5)
    # The same graph follows another camera given its arrays.
    other_cfg = net.cfg.with_camera(75.0, -10.0, 90, 160)
    other = CylinderPoseNet(other_cfg)
    other.load_state_dict(net.state_dict())
    c0, c1 = torch.randn(1, 3, 90, 160), torch.randn(1, 3, 90, 160)
    _, _, logits = run(c0, c1, list(camera_tensors_numpy(other_cfg)))
    with torch.no_grad():
        np.testing.assert_allclose(logits, other.yaw_logits(c0, c1).numpy(), atol=1e-4)

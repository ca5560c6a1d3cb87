"""Procedural panoramas (determinism, seam, variety, structure) and folders of real panoramas."""

from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from slfm_ros.core.errors import ConfigError, DatasetError, InputFormatError
from slfm_ros.core.geometry.panorama import crop_perspective, validate_panorama
from slfm_ros.core.sim.panoramas import PanoramaFolder, ProceduralPanoramas, split_of

WIDTH = 1024


@pytest.fixture(scope="module")
def source() -> ProceduralPanoramas:
    return ProceduralPanoramas(width=WIDTH, seed=11)


def test_panorama_format(source: ProceduralPanoramas) -> None:
    pano = source.panorama(0)
    assert pano.shape == (WIDTH // 2, WIDTH, 3) and pano.dtype == np.uint8
    validate_panorama(pano)


def test_generation_is_deterministic_per_seed(source: ProceduralPanoramas) -> None:
    again = ProceduralPanoramas(width=WIDTH, seed=11)
    np.testing.assert_array_equal(source.panorama(3), again.panorama(3))
    np.testing.assert_array_equal(
        source.generate(np.random.default_rng(5)), again.generate(np.random.default_rng(5))
    )


def test_worlds_differ_between_keys_seeds_and_splits(source: ProceduralPanoramas) -> None:
    first = source.panorama(1).astype(int)
    for other in (
        source.panorama(2),
        ProceduralPanoramas(width=WIDTH, seed=12).panorama(1),
        source.panorama(1, "test"),
    ):
        assert np.mean(np.abs(first - other)) > 15


@pytest.mark.parametrize("outdoor", [0.0, 1.0])
def test_wrap_around_seam_is_continuous(outdoor: float) -> None:
    gen = ProceduralPanoramas(width=WIDTH, seed=2, outdoor_probability=outdoor)
    for key in range(3):
        pano = gen.panorama(key).astype(float)
        seam = np.mean(np.abs(pano[:, 0] - pano[:, -1]))
        neighbours = np.mean(np.abs(np.diff(pano, axis=1)), axis=(0, 2))
        assert seam <= 3.0 * np.percentile(neighbours, 90) + 2.0


def test_views_have_structure_for_feature_matching() -> None:
    gen = ProceduralPanoramas(width=2048, seed=4)
    orb = cv2.ORB_create(nfeatures=2000, fastThreshold=5)
    counts = []
    for key in range(3):
        pano = gen.panorama(key)
        for yaw in np.linspace(-math.pi, math.pi, 4, endpoint=False):
            crop = crop_perspective(pano, yaw, math.radians(-22.5), math.radians(60))
            counts.append(len(orb.detect(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), None)))
    assert np.median(counts) > 150


def test_outdoor_worlds_have_a_bright_sky_and_indoor_a_ceiling() -> None:
    sky = ProceduralPanoramas(width=512, seed=1, outdoor_probability=1.0).panorama(0)
    assert np.mean(sky[:20]) > 120  # sky is emissive near the zenith
    room = ProceduralPanoramas(width=512, seed=1, outdoor_probability=0.0).panorama(0)
    assert room.std() > 20


def test_generation_speed() -> None:
    gen = ProceduralPanoramas(width=2048, seed=9)
    gen.panorama(0)
    start = time.perf_counter()
    for key in range(1, 4):
        gen.panorama(key)
    assert (time.perf_counter() - start) / 3 < 1.5  # ~0.25 s on an idle 2-core machine


def test_draw_names_split_and_rejects_unknown_split(source: ProceduralPanoramas) -> None:
    pano, name = source.draw(np.random.default_rng(0), "val")
    assert pano.shape == (WIDTH // 2, WIDTH, 3) and ":val:" in name
    with pytest.raises(ConfigError):
        source.draw(np.random.default_rng(0), "holdout")
    with pytest.raises(ConfigError):
        ProceduralPanoramas(width=1001)


# ---------------------------------------------------------------------------------------------
# Folders


def write_image(path: Path, shape: tuple[int, int], rgb: tuple[int, int, int]) -> None:
    img = np.zeros((*shape, 3), np.uint8)
    img[:] = rgb[::-1]  # OpenCV writes BGR
    assert cv2.imwrite(str(path), img)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        PanoramaFolder(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match=r"no \.jpg"):
        PanoramaFolder(tmp_path)


def test_folder_loads_rgb_and_validates_aspect(tmp_path: Path) -> None:
    write_image(tmp_path / "a_room.png", (64, 128), (200, 10, 30))
    write_image(tmp_path / "b_wide.jpg", (64, 200), (0, 0, 0))
    (tmp_path / "c_broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "readme.md").write_text("ignored")
    folder = PanoramaFolder(tmp_path)
    assert folder.names == ["a_room.png", "b_wide.jpg", "c_broken.jpg"]
    pano = folder.load(0)
    assert pano.shape == (64, 128, 3)
    np.testing.assert_array_equal(pano[0, 0], [200, 10, 30])
    with pytest.raises(InputFormatError, match="2:1"):
        folder.load(1)
    with pytest.raises(InputFormatError, match="decoded"):
        folder.load(2)


def test_split_is_stable_and_disjoint(tmp_path: Path) -> None:
    names = [f"pano_{i:04d}.jpg" for i in range(2000)]
    splits = [split_of(n) for n in names]
    assert splits == [split_of(n) for n in names]
    fractions = {s: splits.count(s) / len(names) for s in ("train", "val", "test")}
    assert fractions["train"] == pytest.approx(0.8, abs=0.04)
    assert fractions["val"] == pytest.approx(0.1, abs=0.03)
    for i in range(30):
        write_image(tmp_path / names[i], (8, 16), (i, i, i))
    folder = PanoramaFolder(tmp_path)
    parts = [set(folder.indices(s)) for s in ("train", "val", "test")]
    assert set().union(*parts) == set(range(30))
    assert sum(len(p) for p in parts) == 30
    for split, part in zip(("train", "val", "test"), parts, strict=True):
        assert all(folder.split_of(folder.names[i]) == split for i in part)

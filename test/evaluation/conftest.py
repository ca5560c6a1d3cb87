"""Tiny real-format evaluation data made in the tests: panoramas, a SOFA head, recordings, BRIRs."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

SR = 16000
BRIR_AZIMUTHS_DEG = (-60.0, -25.0, 35.0, 70.0)


@pytest.fixture(scope="session")
def panorama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two procedural 1024 x 512 panoramas saved as PNG and JPEG."""
    from slfm_ros.core.sim.panoramas import ProceduralPanoramas

    root = tmp_path_factory.mktemp("panoramas")
    generator = ProceduralPanoramas(1024, seed=3)
    for i, suffix in enumerate((".png", ".jpg")):
        bgr = cv2.cvtColor(generator.panorama(i, "test"), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(root / f"room{i}{suffix}"), bgr)
    return root


@pytest.fixture(scope="session")
def sofa_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SimpleFreeFieldHRIR file holding a rigid spherical head every 5 deg of azimuth."""
    from slfm_ros.core.sim.receivers import SphericalHead
    from slfm_ros.core.sim.sofa import SofaHrirSet, write_sofa

    azimuths = np.radians(np.arange(0.0, 360.0, 5.0))
    elevations = np.zeros_like(azimuths)
    irs = SphericalHead().hrirs(azimuths, elevations, SR)  # (M, taps, 2)
    positions = np.stack([azimuths, elevations, np.ones_like(azimuths)], axis=1)
    path = tmp_path_factory.mktemp("sofa") / "head.sofa"
    write_sofa(path, SofaHrirSet(np.transpose(irs, (0, 2, 1)), positions, float(SR)))
    return path


@pytest.fixture(scope="session")
def sources_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two mono speech-like recordings, one at 22.05 kHz (resampled by the evaluation)."""
    from slfm_ros.core.sim.sources import speech_like

    root = tmp_path_factory.mktemp("sources")
    sf.write(root / "a.wav", speech_like(3.0, SR, np.random.default_rng(0)), SR)
    sf.write(root / "b.flac", speech_like(3.0, 22050, np.random.default_rng(1)), 22050)
    return root


@pytest.fixture(scope="session")
def brir_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Free-field 'BRIRs' of a spherical head at known azimuths, 48 kHz stereo wavs + brirs.csv."""
    from slfm_ros.core.sim.receivers import SphericalHead

    root = tmp_path_factory.mktemp("brirs")
    head = SphericalHead()
    rows = ["file,azimuth_deg"]
    for az in BRIR_AZIMUTHS_DEG:
        name = f"brir_{az:+.0f}.wav"
        sf.write(root / name, head.hrir(math.radians(az), 0.0, 48000), 48000)
        rows.append(f"{name},{az}")
    (root / "brirs.csv").write_text("\n".join(rows) + "\n")
    return root

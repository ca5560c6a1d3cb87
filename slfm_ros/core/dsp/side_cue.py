"""Which side a sound comes from, read off the binaural cue vector by physics alone.

Two facts hold for every two-ear receiver: the nearer ear hears the sound first (interaural
time difference, ITD), and on a head the nearer ear hears it louder (interaural level
difference, ILD; a free-field pair has almost none). Neither needs a label or the receiver's
geometry. The vote is +1 for the left (REP-103), -1 for the right, 0 when the cue is too weak
to say (near the front or back, where both differences vanish) or the two disagree.

    itd:  sign of the lag at the GCC-PHAT peak, when |lag| >= min_lag_s
    ild:  sign of the level-weighted mean band ILD, when |ILD| >= min_ild_db
    both: the ITD and ILD votes where they agree, either one where the other abstains, 0 where
          they disagree
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from slfm_ros.core.dsp.binaural_cues import ILD_SCALE_DB, CueConfig, cue_slices
from slfm_ros.core.errors import ConfigError, InputFormatError

SIDE_CUES = ("itd", "ild", "both")


def side_votes(
    cues: npt.ArrayLike,
    cfg: CueConfig,
    mode: str = "both",
    min_lag_s: float = 6.25e-5,
    min_ild_db: float = 1.0,
) -> npt.NDArray[np.float32]:
    """(...,) side vote in {-1, 0, 1} of cue vectors (..., cfg.dim); see the module doc."""
    if mode not in SIDE_CUES:
        raise ConfigError(f"side cue must be one of {SIDE_CUES}, got {mode!r}")
    x = np.asarray(cues, dtype=np.float64)
    if x.shape[-1] != cfg.dim:
        raise InputFormatError(f"expected cue vectors of {cfg.dim} values, got {x.shape[-1]}")
    parts = cue_slices(cfg)
    lags = cfg.lag_seconds()
    peak = lags[np.argmax(x[..., parts["gcc"]], axis=-1)]
    itd = np.where(np.abs(peak) >= min_lag_s, np.sign(peak), 0.0)
    weights = 10.0 ** x[..., parts["level"]]
    ild_db = ILD_SCALE_DB * (weights * x[..., parts["ild"]]).sum(-1) / weights.sum(-1)
    ild = np.where(np.abs(ild_db) >= min_ild_db, np.sign(ild_db), 0.0)
    if mode == "itd":
        vote = itd
    elif mode == "ild":
        vote = ild
    else:
        vote = np.where(itd == 0, ild, np.where((ild == 0) | (ild == itd), itd, 0.0))
    return vote.astype(np.float32)

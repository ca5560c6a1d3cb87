from __future__ import annotations

import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.sim.splits import SPLITS, split_of


def test_shares_follow_the_fractions_and_ignore_the_folder() -> None:
    names = [f"clip_{i:04d}.wav" for i in range(3000)]
    counts = {s: sum(split_of(n) == s for n in names) for s in SPLITS}
    assert 0.77 < counts["train"] / 3000 < 0.83
    assert 0.08 < counts["val"] / 3000 < 0.12
    assert all(split_of(n, (0.0, 0.0, 1.0)) == "test" for n in names[:50])
    assert all(split_of(n, (2.0, 0.0, 0.0)) == "train" for n in names[:50])
    assert split_of("a/b/clip.wav") == split_of("clip.wav")


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (-0.1, 0.6, 0.5), (0.0, 0.0, 0.0)])
def test_bad_fractions_are_rejected(fractions: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match="split fractions"):
        split_of("x.wav", fractions)  # type: ignore[arg-type]

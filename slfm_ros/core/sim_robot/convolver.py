"""Streaming time-varying convolution with a bank of precomputed responses.

The signal arrives ``hop`` samples at a time. Each push forms the block of the last two hops,
weights it with a periodic Hann window (50 % overlap, so the windows sum to one), convolves it
with the response chosen for the block and adds the result into an accumulator. Block k spans
signal samples [(k-1) hop, (k+1) hop); its response should be the one for the pose at its
centre, k hop, which is the first sample of the pushed hop. After the push the output for
[(k-1) hop, k hop) is complete and is returned: the output lags the input by one hop, and the
response of each block changes smoothly into the next one through the window overlap (the
same scheme as the bag scenarios' offline renderer).

Responses are stored as spectra of one FFT size, so a push costs one forward and two inverse
real FFTs regardless of which response it uses.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import scipy.fft

from slfm_ros.core.errors import ConfigError

FloatArray = npt.NDArray[np.float32]


class StreamingConvolver:
    """Convolves a mono stream with responses picked per block (see module doc).

    responses: (keys, taps, 2) float array, channel 0 = left; a push names its key by index.
    """

    def __init__(self, responses: npt.ArrayLike, hop: int) -> None:
        bank = np.asarray(responses, dtype=np.float32)
        if bank.ndim != 3 or bank.shape[2] != 2 or bank.shape[0] < 1 or bank.shape[1] < 1:
            raise ConfigError(f"responses must be (keys, taps, 2), got shape {bank.shape}")
        if hop < 1:
            raise ConfigError(f"hop must be >= 1 sample, got {hop}")
        self.hop = int(hop)
        self.taps = int(bank.shape[1])
        self.keys = int(bank.shape[0])
        self.block_out = 2 * self.hop + self.taps - 1
        self.nfft = 1 << int(math.ceil(math.log2(self.block_out)))
        self._spectra = scipy.fft.rfft(bank, self.nfft, axis=1).astype(np.complex64)
        self._window = (
            0.5 - 0.5 * np.cos(2 * math.pi * np.arange(2 * self.hop) / (2 * self.hop))
        ).astype(np.float32)
        self._previous = np.zeros(self.hop, dtype=np.float32)
        self._acc = np.zeros((self.block_out, 2), dtype=np.float32)

    def push(self, samples: npt.ArrayLike, key: int) -> FloatArray:
        """Take the next ``hop`` samples and the block's response index; returns the finished
        (hop, 2) output, which ends where ``samples`` begin."""
        new = np.asarray(samples, dtype=np.float32)
        if new.shape != (self.hop,):
            raise ValueError(f"expected {self.hop} samples, got shape {new.shape}")
        if not 0 <= key < self.keys:
            raise IndexError(f"response index {key} outside [0, {self.keys})")
        block = np.concatenate([self._previous, new]) * self._window
        self._previous = new
        if np.any(block):
            spectrum = scipy.fft.rfft(block, self.nfft)
            wet = scipy.fft.irfft(spectrum[:, None] * self._spectra[key], self.nfft, axis=0)
            self._acc[: self.block_out] += wet[: self.block_out]
        out = self._acc[: self.hop].copy()
        self._acc[: -self.hop] = self._acc[self.hop :]
        self._acc[-self.hop :] = 0.0
        return out

    def reset(self) -> None:
        """Forget the signal so far (the next push starts a new stream)."""
        self._previous[:] = 0.0
        self._acc[:] = 0.0

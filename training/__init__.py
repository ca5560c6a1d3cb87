"""Offline trainer of the SLfM models (``slfm train <stage> --config ...``).

config    TrainConfig tree read from YAML, ``--set key=value`` overrides
data      multi-view samples -> augmented batches, addressed by position (exact resume)
stages    pretext, slfm, supervised, probe: each stage's forward pass and loss
loop      the one loop of all stages (AdamW, cosine, AMP, DDP, checkpoints, early stopping)
runtime   torchrun processes, devices, seeds and RNG states, atomic files, out-of-memory errors
sign      global sign of the SLfM solution from the IID cue
configs/  the YAML configs of the shipped model, the upper bound, probes and ablations
"""

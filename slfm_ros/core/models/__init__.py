"""Learned SLfM models.

config            architecture configs and the ``full`` / ``small`` presets (no torch import)
resnet            ResNet-18 trunk
visual_pose       visual pose network (relative camera yaw) and image preprocessing
audio_direction   audio direction network (sound azimuth)
binauralization   cross-view binauralization U-Net of the pretext task
losses            losses of the pretext, SLfM and supervised stages
checkpoint        model directories: weights + model card, checked on load

Import the submodules directly; this package imports nothing so that ``config`` stays usable
without torch.
"""

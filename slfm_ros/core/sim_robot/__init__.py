"""A simulated robot that turns in place as commanded and hears and sees a simulated room.

``base`` integrates the commanded yaw rate within the base's limits, ``convolver`` and
``acoustics`` render the binaural stream block by block from precomputed responses, ``camera``
crops the view of a panorama, and ``robot`` ties them into one clock that advances in real time.
"""

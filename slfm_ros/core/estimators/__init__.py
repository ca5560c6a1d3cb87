"""Sound-azimuth and camera-yaw estimators behind one interface (``base``).

Classical ones (GCC-PHAT, IID, SRP-PHAT/MUSIC, feature matching, cylinder correlation) are made
by name in ``registry``; ``slfm`` and ``cue_audio`` wrap the trained networks, and ``learned``
picks those that fit a model; ``combined`` fuses a learned and a classical estimate per window.
"""

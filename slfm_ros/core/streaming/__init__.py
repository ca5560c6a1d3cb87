"""The sliding-window localizer that slfm_node and the bag replay run.

``pipeline`` takes stamped audio and images and gives one estimate per hop; it keeps them in
``audio_buffer`` and ``image_buffer``, integrates camera yaw in ``yaw_tracker``, and builds its
estimators through ``estimator_setup`` from the settings in ``config``.
"""

"""The simulator: a rotating binaural observer in a room, with camera views and ground truth.

``scene`` renders multi-view samples (worlds from ``panoramas``, sound from ``room``,
``receivers`` and ``sources``), ``dataset`` shards them to disk. ``synthetic_stream`` is a
plain stamped sensor stream with exact truth, for tests, benchmarks and the export's parity check.
"""

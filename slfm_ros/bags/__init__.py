"""Rosbag2 recording and replay evaluation of slfm_ros.

``scenarios`` renders continuous simulated scenes, ``make`` writes them as bags with ground
truth, ``reader`` / ``info`` read any rosbag2 (MCAP or sqlite3), ``replay_offline`` and
``replay_live`` push a bag through the node's processing code (in process, or over DDS to the
real node) and ``report`` scores the outputs.
"""

"""ROS-free core of slfm_ros: everything the nodes, the CLI and the trainer compute.

Shared by all:  ``errors`` (what is raised), ``events`` (bad input reported as diagnostics
instead), ``conventions`` (frames, angle signs and wrapping), and file helpers ``atomic_io``,
``config_io``, ``hashing``, ``cache_dir``.

    streaming/   the sliding-window localizer slfm_node and bag replay run: buffers, yaw
                 tracking, estimator set-up
    devices/     microphone capture, camera/video frames and their health (mic_node, camera_node)
    estimators/  classical and learned azimuth and camera-yaw estimators behind one interface
    dsp/         audio formats, resampling, STFT and binaural cue front ends
    geometry/    interaural delay models, cameras, panoramas, cylindrical reprojection
    models/      the learned networks, their configs, losses and checkpoints
    backends/    running the learned networks: PyTorch, ONNX Runtime, TensorRT, ONNX export
    tracking/    sound sources in the world frame, front/back from the robot's turns
    follow/      turning the robot toward a tracked source
    sim/         simulated scenes and datasets for training and evaluation
    sim_robot/   a simulated robot streaming in real time
"""

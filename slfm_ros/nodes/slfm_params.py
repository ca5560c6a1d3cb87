"""Parameters of ``slfm_node`` (sound direction and camera yaw from audio + images)."""

from __future__ import annotations

from slfm_ros.nodes.param_spec import NodeSpec, ParamSpec

AUDIO_ESTIMATORS = ("gcc_phat", "iid", "srp_phat", "music")
VISUAL_ESTIMATORS = ("orb", "sift")
BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
RECEIVERS = ("free_field", "spherical_head")

SLFM_NODE = NodeSpec(
    name="slfm_node",
    executable="slfm_node",
    description=(
        "estimates the sound azimuth (~/sound_direction) and the camera yaw (~/camera_yaw) "
        "every hop from buffered audio and images; health on /diagnostics"
    ),
    params=(
        # Inputs and frames.
        ParamSpec("audio_topic", "audio/audio_stamped", "Subscribed AudioDataStamped stream"),
        ParamSpec(
            "audio_info_topic",
            "audio/audio_info",
            "Subscribed AudioInfo (channels, rate, format); audio is dropped until it arrives",
        ),
        ParamSpec("image_topic", "image_raw", "Subscribed sensor_msgs/Image stream"),
        ParamSpec(
            "audio_frame_id",
            "mic_link",
            "frame_id of ~/sound_direction: the microphone frame (REP-103, x forward, y left)",
        ),
        ParamSpec("odom_frame_id", "odom", "frame_id of ~/camera_yaw (the fixed frame)"),
        ParamSpec(
            "camera_frame_id",
            "camera_link",
            "child_frame_id of ~/camera_yaw: the camera body frame (x forward), not the optical "
            "frame",
        ),
        # Timing.
        ParamSpec(
            "hop_s",
            0.1,
            "Output period in capture time; window ends lie on multiples of it",
            unit="s",
        ),
        ParamSpec("window_s", 1.0, "Length of the audio window of one estimate", unit="s"),
        ParamSpec(
            "keyframe_interval_s",
            0.5,
            "Camera yaw is measured from the current keyframe to the newest image; a new "
            "keyframe is taken when the newest image is this much younger",
            unit="s",
        ),
        ParamSpec(
            "max_image_audio_skew_s",
            0.25,
            "Largest distance between a window end and the image used for it; farther images "
            "are not used and reported",
            unit="s",
        ),
        ParamSpec(
            "audio_stale_s",
            1.0,
            "When the newest audio is this much older than the newest image, windows follow "
            "the image stamps (camera-only operation)",
            unit="s",
        ),
        ParamSpec(
            "audio_buffer_s",
            4.0,
            "Capacity of the audio ring buffer (at least window_s plus the processing delay)",
            unit="s",
        ),
        ParamSpec(
            "image_buffer_s",
            3.0,
            "Images older than this behind the newest one are dropped from the image buffer",
            unit="s",
        ),
        ParamSpec(
            "max_pending_windows",
            5,
            "If more windows are due at once (processing fell behind), the oldest are skipped "
            "and counted",
        ),
        ParamSpec(
            "queue_size",
            500,
            "Messages held between the subscriptions and the processing thread; when full, "
            "the oldest message is dropped and counted",
        ),
        # Audio checks.
        ParamSpec(
            "silence_threshold_dbfs",
            -60.0,
            "Windows whose RMS level is below this give no azimuth",
            unit="dBFS",
        ),
        ParamSpec(
            "min_window_fill",
            0.9,
            "Smallest fraction of a window that must hold received audio (gaps are zeros)",
        ),
        ParamSpec(
            "gap_tolerance_s",
            0.005,
            "Audio stamp deviations up to this are jitter; larger ones are reported as gaps "
            "or overlaps",
            unit="s",
        ),
        ParamSpec(
            "max_gap_fill_s",
            0.5,
            "Audio gaps up to this are zero-filled; longer ones restart the audio buffer",
            unit="s",
        ),
        # Estimators.
        ParamSpec(
            "estimator",
            "slfm",
            "slfm = learned models from model_dir (falls back to the classical estimators, "
            "with a diagnostic, when they are missing or incompatible); classic = "
            "audio_estimator + visual_estimator",
            choices=("slfm", "classic"),
        ),
        ParamSpec(
            "audio_estimator",
            "gcc_phat",
            "Classical sound-direction estimator (used by estimator=classic and as fallback)",
            choices=AUDIO_ESTIMATORS,
        ),
        ParamSpec(
            "visual_estimator",
            "orb",
            "Classical camera-rotation estimator (used by estimator=classic and as fallback)",
            choices=VISUAL_ESTIMATORS,
        ),
        ParamSpec(
            "backend",
            "auto",
            "Inference backend of the learned models; auto = best available",
            choices=BACKENDS,
        ),
        ParamSpec(
            "model_dir",
            "",
            "Folder of the learned models (model card + weights); empty = the models shipped "
            "with the package",
        ),
        ParamSpec(
            "inference_device",
            "auto",
            "Device of the learned models; auto = CUDA when the backend has it, else CPU",
            choices=("auto", "cpu", "cuda"),
        ),
        ParamSpec(
            "model_file_path",
            "",
            "ONNX export folder of the model (slfm export); empty = <model_dir>/onnx when it "
            "matches the model card, else an export made on first use in the cache",
        ),
        ParamSpec(
            "engine_file_path",
            "",
            "TensorRT engine file ('{network}' becomes audio / visual); empty = in the cache, "
            "named after the model hash, precision and max batch",
        ),
        ParamSpec(
            "force_engine_update",
            False,
            "Rebuild the TensorRT engines even when the cached ones are valid",
        ),
        ParamSpec(
            "enable_fp16",
            False,
            "Half precision on GPUs (TensorRT FP16, fp16 ONNX on CUDA, half torch weights); "
            "ignored on the CPU",
        ),
        ParamSpec(
            "max_workspace_size",
            1 << 30,
            "TensorRT builder workspace limit",
            unit="bytes",
        ),
        ParamSpec(
            "max_batch_size",
            8,
            "Largest batch a TensorRT engine accepts (larger inputs are split)",
        ),
        ParamSpec(
            "inference_threads",
            0,
            "CPU threads of ONNX Runtime / torch for the learned models; 0 = library default",
        ),
        ParamSpec(
            "estimator_sample_rate",
            16000,
            "Audio is resampled to this rate before a classical estimator (the learned model "
            "uses the rate of its card)",
            unit="Hz",
        ),
        ParamSpec(
            "image_width",
            320,
            "Images are resized to this width (aspect kept) before estimation; 0 = keep",
            unit="px",
        ),
        ParamSpec(
            "hfov_deg",
            60.0,
            "Horizontal field of view of the camera, used by the classical visual estimators",
            unit="deg",
        ),
        ParamSpec(
            "camera_pitch_deg",
            0.0,
            "Pitch of the camera's optical axis (+ up; the SLfM data uses -22.5), used by the "
            "classical visual estimators",
            unit="deg",
        ),
        # Receiver geometry (classical audio estimators).
        ParamSpec(
            "receiver",
            "free_field",
            "Interaural model: free_field = two microphones mic_spacing_m apart; "
            "spherical_head = ears on a rigid sphere of head_radius_m",
            choices=RECEIVERS,
        ),
        ParamSpec("mic_spacing_m", 0.14, "Distance between the two microphones", unit="m"),
        ParamSpec("head_radius_m", 0.0875, "Radius of the spherical head model", unit="m"),
        ParamSpec("diagnostics_period", 1.0, "Period of the status on /diagnostics", unit="s"),
    ),
)

"""Parameters of ``slfm_node`` (sound direction and camera yaw from audio + images)."""

from __future__ import annotations

from slfm_ros.core.streaming.config import CLASSIC_AUDIO, RECEIVERS
from slfm_ros.core.tracking.bearing_tracker import TrackerConfig
from slfm_ros.core.tracking.rotation_source import ROTATION_SOURCES, RotationConfig
from slfm_ros.nodes.param_spec import NodeSpec, ParamSpec

AUDIO_ESTIMATORS = ("gcc_phat", "gcc_phat_onset", "iid", "srp_phat", "music")
VISUAL_ESTIMATORS = ("orb", "sift")
BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
DIRECTION_OUTPUTS = ("tracked", "folded")
# The tracker's and rotation inputs' defaults live in their config classes (one place).
_TRACKER = TrackerConfig()
_ROTATION = RotationConfig()

SLFM_NODE = NodeSpec(
    name="slfm_node",
    executable="slfm_node",
    description=(
        "estimates the sound azimuth (~/sound_direction) and the camera yaw (~/camera_yaw) "
        "every hop from buffered audio and images, tracks the sources in the odom frame with "
        "front/back resolved from the robot's turns (~/sound_source, ~/sound_tracks, "
        "~/sound_markers); health on /diagnostics"
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
            "auto",
            "auto = the learned models from model_dir and the classical estimators fused per "
            "window (where they agree the classical angle, or the learned one when the model "
            "refined it on the sound's correlation; a confident learned one where they "
            "disagree); slfm = the learned models alone; both fall back to the classical "
            "estimators, with a diagnostic, when the models are missing or incompatible; "
            "classic = audio_estimator + visual_estimator",
            choices=("auto", "slfm", "classic"),
        ),
        ParamSpec(
            "audio_estimator",
            CLASSIC_AUDIO,
            "Classical sound-direction estimator (used by estimator=classic, as fallback and "
            "as the classical half of estimator=auto); gcc_phat = every frame alike; "
            "gcc_phat_onset = weighted to the sound's onsets: far more robust to room "
            "reflections for a static talker, but it follows the source with the most onsets "
            "and lags while the robot turns",
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
            "Horizontal field of view of the camera, used by the classical visual estimators and "
            "by the learned one's cylinder reprojection",
            unit="deg",
        ),
        ParamSpec(
            "camera_pitch_deg",
            0.0,
            "Pitch of the camera's optical axis (+ up; the SLfM data uses -22.5), used by the "
            "classical visual estimators and by the learned one's cylinder reprojection",
            unit="deg",
        ),
        # Receiver geometry (classical audio estimators, and the learned one when it uses it).
        ParamSpec(
            "receiver",
            "free_field",
            "Interaural model: free_field = two microphones mic_spacing_m apart; "
            "spherical_head = ears on a rigid sphere of head_radius_m; measured = the delay "
            "curve of the head measured in hrtf_path; calibrated = the model "
            "that `slfm train adapt` fitted to the robot's own turning recordings (the "
            "model_dir card's calibrated_receiver)",
            choices=RECEIVERS,
        ),
        ParamSpec("mic_spacing_m", 0.14, "Distance between the two microphones", unit="m"),
        ParamSpec("head_radius_m", 0.0875, "Radius of the spherical head model", unit="m"),
        ParamSpec(
            "hrtf_path",
            "",
            "receiver: measured: a SOFA file (SimpleFreeFieldHRIR) of the robot's own head, or "
            "one like it; its horizontal-plane HRIRs give the delay of each direction",
        ),
        ParamSpec(
            "model_uses_receiver",
            True,
            "Tell the learned audio model the receiver's largest interaural delay from "
            "receiver / mic_spacing_m / head_radius_m; false when they are not known (the "
            "model then works from the sound alone)",
        ),
        # Tracking: sources in the odom frame, front/back from the robot's own turns.
        ParamSpec(
            "sound_direction_output",
            "tracked",
            "What ~/sound_direction carries: tracked = the primary track's body-frame bearing "
            "(full circle) once its front/back is resolved, until then each window's "
            "front-folded estimate; folded = always each window's front-folded estimate",
            choices=DIRECTION_OUTPUTS,
        ),
        ParamSpec(
            "source_range_m",
            1.0,
            "Distance from the robot at which ~/sound_source and the markers place a source "
            "(the bearing is measured, the range is not)",
            unit="m",
        ),
        ParamSpec(
            "publish_markers",
            True,
            "Publish a visualization_msgs/Marker arrow per track on ~/sound_markers (needs the "
            "visualization_msgs package; without it /diagnostics says so)",
        ),
        ParamSpec(
            "rotation_source",
            _ROTATION.source,
            "Where the robot's yaw comes from: auto = odometry while it publishes, else the "
            "IMU, else the node's own camera yaw; odom / imu / camera = that one only; none = "
            "no rotation (front/back stays undecided)",
            choices=ROTATION_SOURCES,
        ),
        ParamSpec(
            "odom_topic",
            "odom",
            "Subscribed nav_msgs/Odometry (yaw and x, y in the odom frame) when rotation_source "
            "is auto or odom",
        ),
        ParamSpec(
            "imu_topic",
            "imu/data",
            "Subscribed sensor_msgs/Imu (orientation yaw, or angular_velocity.z integrated "
            "when orientation_covariance[0] is -1) when rotation_source is auto or imu",
        ),
        ParamSpec(
            "rotation_timeout_s",
            _ROTATION.timeout_s,
            "A rotation input without a sample for this long is stale (and a hole this long in "
            "its history is unknown yaw): no front/back evidence meanwhile",
            unit="s",
        ),
        ParamSpec(
            "rotation_max_yaw_rate_deg_s",
            _ROTATION.max_yaw_rate_deg_s,
            "Yaw changes faster than this are jumps of the input's frame (an odometry reset), "
            "not turns of the robot",
            unit="deg/s",
        ),
        ParamSpec(
            "tracker_front_back_ambiguous",
            _TRACKER.front_back_ambiguous,
            "The receiver cannot tell front from back (two ears or microphones): keep front and "
            "back hypotheses; false = the estimates are full-circle azimuths",
        ),
        ParamSpec(
            "tracker_measurement_std_deg",
            _TRACKER.measurement_std_deg,
            "Standard deviation of one window's azimuth error assumed by the tracker (the "
            "estimators' own variances are not calibrated as angle errors)",
            unit="deg",
        ),
        ParamSpec(
            "tracker_source_speed_deg_s",
            _TRACKER.source_speed_deg_s,
            "How fast a source's world bearing may wander (random-walk standard deviation per "
            "second): larger follows moving sources faster, smaller decides front/back faster",
            unit="deg/s",
        ),
        ParamSpec(
            "tracker_decide_probability",
            _TRACKER.decide_probability,
            "A track is resolved when its most probable front/back hypothesis reaches this "
            "probability",
        ),
        ParamSpec(
            "tracker_undecide_probability",
            _TRACKER.undecide_probability,
            "A resolved track becomes ambiguous again when that probability falls below this",
        ),
        ParamSpec(
            "tracker_front_prior",
            _TRACKER.front_prior,
            "Probability given to the front hypothesis when a track starts",
        ),
        ParamSpec(
            "tracker_outlier_probability",
            _TRACKER.outlier_probability,
            "Share of window estimates assumed to be wild (reflections, another source); they "
            "cannot decide front/back on their own",
        ),
        ParamSpec(
            "tracker_gate_deg",
            _TRACKER.gate_deg,
            "An estimate farther than this (or three standard deviations) from every track "
            "starts a new track",
            unit="deg",
        ),
        ParamSpec(
            "tracker_confirm_hits",
            _TRACKER.confirm_hits,
            "Estimates a track needs before it leaves the tentative state",
        ),
        ParamSpec(
            "tracker_tentative_timeout_s",
            _TRACKER.tentative_timeout_s,
            "A tentative track not heard for this long is dropped",
            unit="s",
        ),
        ParamSpec(
            "tracker_lost_after_s",
            _TRACKER.lost_after_s,
            "A track not heard for this long is lost (it is held, fading, until then)",
            unit="s",
        ),
        ParamSpec(
            "tracker_salience_time_s",
            _TRACKER.salience_time_s,
            "Time constant of how often a track was heard recently; the most salient confirmed "
            "track is the primary one",
            unit="s",
        ),
        ParamSpec("tracker_max_tracks", _TRACKER.max_tracks, "Most tracks kept at once"),
        ParamSpec("diagnostics_period", 1.0, "Period of the status on /diagnostics", unit="s"),
    ),
)

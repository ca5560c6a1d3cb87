"""Parameters of ``mic_node`` (binaural microphone capture)."""

from __future__ import annotations

from slfm_ros.nodes.param_spec import NodeSpec, ParamSpec

SAMPLE_FORMATS = ("S16LE", "S32LE", "F32LE")

MIC_NODE = NodeSpec(
    name="mic_node",
    executable="mic_node",
    description="captures a binaural microphone and publishes AudioDataStamped + AudioInfo",
    params=(
        ParamSpec(
            "device",
            "",
            "Input device: a name (or part of the PortAudio device name, e.g. 'pulse') or an "
            "index as a string ('2'; on the command line -p device:=\"'2'\"); empty = the "
            "system default input. A wrong value fails with the list of devices.",
        ),
        ParamSpec("sample_rate", 48000, "Capture sample rate", unit="Hz"),
        ParamSpec("channels", 2, "Number of captured channels (binaural = 2: left, right)"),
        ParamSpec(
            "chunk_ms",
            20,
            "Length of one published chunk; its stamp is the capture time of its first sample",
            unit="ms",
        ),
        ParamSpec(
            "sample_format",
            "S16LE",
            "Sample encoding of the published bytes (interleaved, little-endian)",
            choices=SAMPLE_FORMATS,
        ),
        ParamSpec(
            "frame_id",
            "mic_link",
            "frame_id of the published headers (microphone frame)",
        ),
        ParamSpec("audio_topic", "audio/audio_stamped", "Topic of the AudioDataStamped stream"),
        ParamSpec(
            "info_topic",
            "audio/audio_info",
            "Topic of the AudioInfo (transient-local, latched)",
        ),
        ParamSpec(
            "diagnostics_period",
            1.0,
            "Period of the capture status on /diagnostics",
            unit="s",
        ),
    ),
)

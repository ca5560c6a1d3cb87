"""ONNX Runtime backend: the exported graphs (``slfm_ros.core.backends.onnx_export``) on the CPU
or with the CUDA execution provider.

On CUDA, ``enable_fp16`` selects the fp16 export. ONNX Runtime quietly falls back to the CPU
provider when the CUDA provider cannot start (e.g. a missing cuDNN); the backend checks the
providers the sessions really got and refuses to call a CPU session "cuda".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slfm_ros.core.backends.base import (
    BackendOptions,
    Float32,
    InferenceBackend,
    cache_root,
    register_backend,
)
from slfm_ros.core.backends.model_source import ModelSource
from slfm_ros.core.errors import ModelError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


@register_backend
class OnnxRuntimeBackend(InferenceBackend):
    name = "onnxruntime"

    def __init__(
        self, source: ModelSource, device: str, precision: str, audio: Any, visual: Any
    ) -> None:
        super().__init__(source, device, precision)
        self.audio_session = audio
        self.visual_session = visual
        from slfm_ros.core.backends.onnx_export import (
            AUDIO_INPUT,
            AUDIO_OUTPUT,
            VISUAL_INPUTS,
            VISUAL_OUTPUT,
        )

        self._audio_io = (AUDIO_INPUT, AUDIO_OUTPUT)
        self._visual_io = (*VISUAL_INPUTS, VISUAL_OUTPUT)

    @classmethod
    def unavailable_reason(cls, device: str) -> str | None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return f"onnxruntime is not installed ({exc})"
        provider = PROVIDERS[device]
        if provider not in ort.get_available_providers():
            return (
                f"{provider} not in this onnxruntime build ({ort.__version__}); "
                "install onnxruntime-gpu for CUDA"
                if device == "cuda"
                else f"{provider} missing"
            )
        return None

    @classmethod
    def load(cls, source: ModelSource, device: str, options: BackendOptions) -> OnnxRuntimeBackend:
        import onnxruntime as ort

        from slfm_ros.core.backends.onnx_export import find_or_export

        notes = []
        fp16 = options.enable_fp16 and device == "cuda"
        if options.enable_fp16 and not fp16:
            notes.append("enable_fp16 ignored on the CPU (float32 is faster there)")
        precision = "fp16" if fp16 else "fp32"
        manifest, where = find_or_export(
            source,
            precision,
            options.opset,
            export_dir=options.model_file_path,
            cache_dir=cache_root(options),
        )
        notes.append(where)
        session_options = ort.SessionOptions()
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if options.intra_op_threads:
            session_options.intra_op_num_threads = options.intra_op_threads
        if options.inter_op_threads:
            session_options.inter_op_num_threads = options.inter_op_threads
        spinning = "1" if options.allow_spinning else "0"
        session_options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        session_options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
        providers = [PROVIDERS[device]]
        if device == "cuda":
            providers.append(PROVIDERS["cpu"])  # for the few nodes without a CUDA kernel
        sessions = [
            ort.InferenceSession(str(path), session_options, providers=providers)
            for path in (manifest.audio_path, manifest.visual_path)
        ]
        for session in sessions:
            got = session.get_providers()
            if got[0] != PROVIDERS[device]:
                raise ModelError(
                    f"onnxruntime did not start {PROVIDERS[device]} (session providers {got}); "
                    "check the CUDA/cuDNN libraries onnxruntime-gpu needs"
                )
        backend = cls(source, device, precision, sessions[0], sessions[1])
        backend.notes.extend(notes)
        return backend

    def run_audio(self, features: Float32) -> Float32:
        name, output = self._audio_io
        x = np.ascontiguousarray(features, dtype=np.float32)
        return np.asarray(self.audio_session.run([output], {name: x})[0], dtype=np.float32)

    def run_visual(self, image_0: Float32, image_1: Float32) -> Float32:
        first, second, output = self._visual_io
        feeds = {
            first: np.ascontiguousarray(image_0, dtype=np.float32),
            second: np.ascontiguousarray(image_1, dtype=np.float32),
        }
        return np.asarray(self.visual_session.run([output], feeds)[0], dtype=np.float32)

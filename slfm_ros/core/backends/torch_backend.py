"""PyTorch backend: the model directory's weights run directly, on the CPU or a CUDA GPU.

On CUDA, ``enable_fp16`` runs the networks in half precision (inputs cast on the device,
outputs returned as float32) and ``channels_last`` switches the memory format, which lets
cuDNN pick NHWC convolution kernels. Both are ignored on the CPU, with a note, because half
precision convolutions are slower than float32 there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slfm_ros.core.backends.base import (
    BackendOptions,
    Float32,
    InferenceBackend,
    register_backend,
)
from slfm_ros.core.backends.model_source import ModelSource


@register_backend
class TorchBackend(InferenceBackend):
    name = "torch"

    def __init__(
        self,
        source: ModelSource,
        device: str,
        precision: str,
        audio_net: Any,
        visual_net: Any,
        channels_last: bool,
    ) -> None:
        import torch

        super().__init__(source, device, precision)
        self._torch = torch
        self._device = torch.device(device)
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        self._memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.audio_net = audio_net
        self.visual_net = visual_net

    @classmethod
    def unavailable_reason(cls, device: str) -> str | None:
        try:
            import torch
        except ImportError as exc:
            return f"PyTorch is not installed ({exc})"
        if device == "cuda" and not torch.cuda.is_available():
            built = torch.version.cuda
            return (
                "no CUDA device visible to PyTorch"
                if built
                else f"PyTorch {torch.__version__} is a CPU-only build"
            )
        return None

    @classmethod
    def load(cls, source: ModelSource, device: str, options: BackendOptions) -> TorchBackend:
        import torch

        from slfm_ros.core.models.checkpoint import load_model

        notes = []
        if options.intra_op_threads:
            torch.set_num_threads(options.intra_op_threads)
        if options.inter_op_threads:
            try:
                torch.set_num_interop_threads(options.inter_op_threads)
            except RuntimeError:
                notes.append("inter-op threads already fixed for this process; setting ignored")
        model = load_model(source.path, map_location=device, camera=source.camera)
        fp16 = options.enable_fp16 and device == "cuda"
        channels_last = options.channels_last and device == "cuda"
        if options.enable_fp16 and not fp16:
            notes.append("enable_fp16 ignored on the CPU (float32 is faster there)")
        if options.channels_last and not channels_last:
            notes.append("channels_last ignored on the CPU")
        nets = []
        for net in (model.audio_net, model.visual_net):
            if fp16:
                net = net.half()
            if channels_last:
                net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            nets.append(net.eval())
        backend = cls(source, device, "fp16" if fp16 else "fp32", nets[0], nets[1], channels_last)
        backend.notes.extend(notes)
        return backend

    def _tensor(self, array: Float32) -> Any:
        tensor = self._torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        tensor = tensor.to(self._device, non_blocking=True).to(self._dtype)
        return tensor.contiguous(memory_format=self._memory_format)

    def run_audio(self, features: Float32) -> Float32:
        with self._torch.inference_mode():
            out = self.audio_net(self._tensor(features))
        return out.float().cpu().numpy()

    def run_visual(self, image_0: Float32, image_1: Float32) -> Float32:
        with self._torch.inference_mode():
            out = self.visual_net(self._tensor(image_0), self._tensor(image_1))
        return out.float().cpu().numpy()

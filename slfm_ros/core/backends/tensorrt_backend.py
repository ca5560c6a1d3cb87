"""TensorRT backend: engines built from the fp32 ONNX export with the TensorRT Python API.

Build (once per model, GPU, TensorRT version, precision and max batch; cached, see
``engine_cache``): ``trt.Builder`` -> explicit-batch network filled by ``trt.OnnxParser`` ->
builder config with the workspace memory-pool limit (``max_workspace_size``), the FP16 flag
(``enable_fp16``; TensorRT then picks FP16 or FP32 kernels per layer) and one optimization
profile with the batch range 1..``max_batch_size`` (optimum 2, the symmetric estimators'
batch) -> ``build_serialized_network``. ``force_engine_update`` rebuilds; a cached engine whose
key or bytes do not match, or that does not deserialize, is rebuilt and never used.

Run: device buffers are PyTorch CUDA tensors (PyTorch is what Jetson and desktop users already
have), bound with ``set_input_shape`` / ``set_tensor_address``; ``execute_async_v3`` runs on a
dedicated CUDA stream on which the host->device copies, the engine and the device->host copy
of the (B,) result are queued, so one call synchronises once. ``run_audio_device`` /
``run_visual_device`` take and return CUDA tensors for callers that keep data on the GPU.
Batches larger than ``max_batch_size`` are split.

Requires TensorRT >= 8.6 (tensor-address API) and a CUDA build of PyTorch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from slfm_ros.core.backends.base import (
    BackendOptions,
    Float32,
    InferenceBackend,
    cache_root,
    register_backend,
)
from slfm_ros.core.backends.engine_cache import EngineKey, load_or_build
from slfm_ros.core.backends.model_source import ModelSource
from slfm_ros.core.errors import InputFormatError, ModelError
from slfm_ros.core.hashing import sha256_file

MIN_VERSION = (8, 6)
OPT_BATCH = 2
NETWORKS = ("audio", "visual")


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def engine_paths(options: BackendOptions, source: ModelSource, precision: str) -> dict[str, Path]:
    """Engine file of each network for ``options.engine_file_path`` (see BackendOptions)."""
    template = options.engine_file_path
    if not template:
        folder = cache_root(options) / "tensorrt" / source.card_sha256[:16]
        return {n: folder / f"{n}_{precision}_b{options.max_batch_size}.plan" for n in NETWORKS}
    if "{network}" in template:
        return {n: Path(template.replace("{network}", n)) for n in NETWORKS}
    path = Path(template)
    suffix = path.suffix or ".plan"
    return {n: path.with_name(f"{path.stem}.{n}{suffix}") for n in NETWORKS}


def build_serialized_engine(
    trt: Any,
    logger: Any,
    onnx_path: Path,
    precision: str,
    max_batch_size: int,
    max_workspace_size: int,
) -> bytes:
    """Serialized engine of ``onnx_path`` (dynamic batch 1..max_batch_size)."""
    builder = trt.Builder(logger)
    flags = 0
    if _version_tuple(trt.__version__) < (10, 0):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes(), str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ModelError(f"TensorRT cannot parse {onnx_path}: {'; '.join(errors)}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(max_workspace_size))
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    opt = min(OPT_BATCH, max_batch_size)
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        rest = tuple(int(d) for d in tuple(tensor.shape)[1:])
        if any(d < 1 for d in rest):
            raise ModelError(
                f"{onnx_path}: input {tensor.name} has dynamic non-batch dimensions "
                f"{tuple(tensor.shape)}; only the batch dimension may be dynamic"
            )
        profile.set_shape(tensor.name, (1, *rest), (opt, *rest), (max_batch_size, *rest))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(
            f"TensorRT could not build an engine from {onnx_path} (see the TensorRT log "
            "above); a larger max_workspace_size may help"
        )
    return bytes(serialized)


class _EngineRunner:
    """One deserialized engine with its execution context, run on one CUDA stream."""

    def __init__(self, trt: Any, torch: Any, engine: Any, max_batch_size: int, path: Path):
        self.trt = trt
        self.torch = torch
        self.engine = engine
        self.path = path
        self.max_batch_size = max_batch_size
        self.context = engine.create_execution_context()
        if self.context is None:
            raise ModelError(f"TensorRT could not create an execution context for {path}")
        self.stream = torch.cuda.Stream()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == mode]
        outputs = [n for n in names if engine.get_tensor_mode(n) != mode]
        if len(outputs) != 1:
            raise ModelError(f"{path}: expected one output tensor, got {outputs}")
        self.output = outputs[0]
        self.dtypes = {n: self._torch_dtype(engine.get_tensor_dtype(n)) for n in names}

    def _torch_dtype(self, dtype: Any) -> Any:
        table = {
            self.trt.DataType.FLOAT: self.torch.float32,
            self.trt.DataType.HALF: self.torch.float16,
            self.trt.DataType.INT32: self.torch.int32,
        }
        if dtype not in table:
            raise ModelError(f"{self.path}: unsupported tensor type {dtype}")
        return table[dtype]

    def run_device(self, *tensors: Any) -> Any:
        """CUDA tensors (B, ...) with B <= max_batch_size -> output CUDA tensor (B,)."""
        torch = self.torch
        bound = []
        # Inputs may come from work queued on the caller's stream.
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            for name, tensor in zip(self.inputs, tensors, strict=True):
                tensor = tensor.to(device="cuda", dtype=self.dtypes[name]).contiguous()
                if not self.context.set_input_shape(name, tuple(tensor.shape)):
                    raise InputFormatError(
                        f"TensorRT engine {self.path.name}: input {name} of shape "
                        f"{tuple(tensor.shape)} is outside the engine's profile (batch 1.."
                        f"{self.max_batch_size}, other dims as exported)"
                    )
                self.context.set_tensor_address(name, tensor.data_ptr())
                bound.append(tensor)  # keeps the buffer alive until the engine has run
            shape = tuple(self.context.get_tensor_shape(self.output))
            if any(d < 0 for d in shape):
                raise ModelError(f"{self.path.name}: output shape unresolved: {shape}")
            out = torch.empty(shape, dtype=self.dtypes[self.output], device="cuda")
            self.context.set_tensor_address(self.output, out.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise ModelError(f"TensorRT execution of {self.path.name} failed")
        torch.cuda.current_stream().wait_stream(self.stream)
        return out

    def run_host(self, *arrays: Float32) -> Float32:
        """numpy inputs -> numpy float32 output, split into engine-sized batches."""
        torch = self.torch
        count = arrays[0].shape[0]
        parts = []
        for start in range(0, count, self.max_batch_size):
            stop = min(count, start + self.max_batch_size)
            with torch.cuda.stream(self.stream):
                tensors = [
                    torch.from_numpy(np.ascontiguousarray(a[start:stop], dtype=np.float32)).to(
                        "cuda", non_blocking=True
                    )
                    for a in arrays
                ]
                out = self.run_device(*tensors)
                parts.append(out.float().cpu().numpy())
        return np.concatenate(parts).astype(np.float32, copy=False)


@register_backend
class TensorRtBackend(InferenceBackend):
    name = "tensorrt"
    devices = ("cuda",)

    def __init__(
        self, source: ModelSource, precision: str, audio: _EngineRunner, visual: _EngineRunner
    ) -> None:
        super().__init__(source, "cuda", precision)
        self.audio_engine = audio
        self.visual_engine = visual

    @classmethod
    def unavailable_reason(cls, device: str) -> str | None:
        if device != "cuda":
            return "TensorRT runs only on NVIDIA GPUs"
        try:
            import tensorrt as trt
        except ImportError as exc:
            return f"the tensorrt Python package is not installed ({exc})"
        if _version_tuple(trt.__version__) < MIN_VERSION:
            return f"TensorRT {trt.__version__} found, >= 8.6 needed (tensor-address API)"
        try:
            import torch
        except ImportError:
            return "PyTorch with CUDA is needed for the device buffers; it is not installed"
        if not torch.cuda.is_available():
            return "no CUDA device visible to PyTorch (needed for the device buffers)"
        return None

    @classmethod
    def load(cls, source: ModelSource, device: str, options: BackendOptions) -> TensorRtBackend:
        import tensorrt as trt
        import torch

        from slfm_ros.core.export import find_or_export

        if device != "cuda":
            raise ModelError("the TensorRT backend runs only on device 'cuda'")
        # TensorRT builds FP16 engines from the fp32 graph (per-layer precision choice).
        manifest, where = find_or_export(
            source, "fp32", options.opset, options.model_file_path, cache_root(options)
        )
        precision = "fp16" if options.enable_fp16 else "fp32"
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        major, minor = torch.cuda.get_device_capability()
        notes = [where]
        if precision == "fp16" and not getattr(trt.Builder(logger), "platform_has_fast_fp16", True):
            notes.append("this GPU has no fast FP16; TensorRT will mostly pick FP32 kernels")

        def deserialize(data: bytes) -> Any:
            try:
                return runtime.deserialize_cuda_engine(data)
            except Exception as exc:  # some TensorRT versions raise, others return None
                raise ModelError(f"TensorRT cannot deserialize the engine: {exc}") from exc

        runners = {}
        for network, engine_path in engine_paths(options, source, precision).items():
            onnx_path = manifest.audio_path if network == "audio" else manifest.visual_path
            key = EngineKey(
                tensorrt_version=str(trt.__version__),
                device_name=str(torch.cuda.get_device_name()),
                compute_capability=f"{major}.{minor}",
                precision=precision,
                model_sha256=sha256_file(onnx_path),
                max_batch_size=options.max_batch_size,
            )
            started = time.monotonic()

            def build(onnx_path: Path = onnx_path) -> bytes:
                return build_serialized_engine(
                    trt,
                    logger,
                    onnx_path,
                    precision,
                    options.max_batch_size,
                    options.max_workspace_size,
                )

            cached = load_or_build(
                engine_path,
                key,
                build,
                deserialize,
                force_rebuild=options.force_engine_update,
                info={
                    "onnx": str(onnx_path),
                    "card_sha256": source.card_sha256,
                    "max_workspace_size": options.max_workspace_size,
                },
            )
            if cached.built:
                notes.append(
                    f"{network} engine built in {time.monotonic() - started:.1f} s "
                    f"({cached.reason}) -> {engine_path}"
                )
            else:
                notes.append(f"{network} engine loaded from {engine_path}")
            runners[network] = _EngineRunner(
                trt, torch, cached.engine, options.max_batch_size, engine_path
            )
        backend = cls(source, precision, runners["audio"], runners["visual"])
        backend.notes.extend(notes)
        return backend

    def run_audio(self, features: Float32) -> Float32:
        return self.audio_engine.run_host(features)

    def run_visual(self, image_0: Float32, image_1: Float32) -> Float32:
        return self.visual_engine.run_host(image_0, image_1)

    def run_audio_device(self, features: Any) -> Any:
        """CUDA tensor (B <= max_batch_size, 4, F, T) -> CUDA tensor (B,), no host copies."""
        return self.audio_engine.run_device(features)

    def run_visual_device(self, image_0: Any, image_1: Any) -> Any:
        """CUDA tensors (B <= max_batch_size, 3, H, W) -> CUDA tensor (B,), no host copies."""
        return self.visual_engine.run_device(image_0, image_1)

    def close(self) -> None:
        for runner in (self.audio_engine, self.visual_engine):
            runner.context = None
            runner.engine = None

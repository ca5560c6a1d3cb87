"""TensorRT backend: engines built from the ONNX export with the TensorRT Python API.

Build (once per model, GPU, TensorRT version, precision and max batch; cached, see
``engine_cache``): ``trt.Builder`` -> explicit-batch network filled by ``trt.OnnxParser`` ->
builder config with the workspace memory-pool limit (``max_workspace_size``) and one
optimization profile with the batch range 1..``max_batch_size`` (optimum 2, the symmetric
estimators' batch) -> ``build_serialized_network``. ``force_engine_update`` rebuilds; a cached
engine whose key or bytes do not match, or that does not deserialize, is rebuilt and never used.

Precision (``enable_fp16``): where the builder has ``BuilderFlag.FP16`` (TensorRT 8.6 to 10.x;
deprecated from 10.12) the engine is built from the fp32 export with that flag and TensorRT
picks FP16 or FP32 kernels per layer. TensorRT 11 removed the flag: every network is strongly
typed, so an FP16 engine is built from the fp16 export (half weights and activations, float32
inputs and outputs; ``slfm export --fp16``) and runs exactly the types of that graph.

Run: device buffers are PyTorch CUDA tensors (PyTorch is what Jetson and desktop users already
have), bound with ``set_input_shape`` / ``set_tensor_address``; ``execute_async_v3`` runs on a
dedicated CUDA stream on which the host->device copies, the engine and the device->host copy
of the (B,) result are queued, so one call synchronises once. ``run_audio_device`` /
``run_visual_device`` take and return CUDA tensors for callers that keep data on the GPU.
Batches larger than ``max_batch_size`` are split.

Requires TensorRT >= 8.6 (tensor-address API, ``execute_async_v3``) and a CUDA build of PyTorch.
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
# Every TensorRT name this module uses, checked by ``unavailable_reason`` so that an API change
# in a TensorRT release is reported in the backend selection, not raised mid-build.
REQUIRED_API = (
    "Logger.WARNING",
    "Builder.create_network",
    "Builder.create_builder_config",
    "Builder.create_optimization_profile",
    "Builder.build_serialized_network",
    "OnnxParser.parse",
    "OnnxParser.num_errors",
    "OnnxParser.get_error",
    "INetworkDefinition.num_inputs",
    "INetworkDefinition.get_input",
    "IBuilderConfig.set_memory_pool_limit",
    "IBuilderConfig.set_flag",
    "IBuilderConfig.add_optimization_profile",
    "MemoryPoolType.WORKSPACE",
    "IOptimizationProfile.set_shape",
    "Runtime.deserialize_cuda_engine",
    "ICudaEngine.num_io_tensors",
    "ICudaEngine.get_tensor_name",
    "ICudaEngine.get_tensor_mode",
    "ICudaEngine.get_tensor_dtype",
    "ICudaEngine.create_execution_context",
    "TensorIOMode.INPUT",
    "DataType.FLOAT",
    "DataType.HALF",
    "IExecutionContext.set_input_shape",
    "IExecutionContext.set_tensor_address",
    "IExecutionContext.get_tensor_shape",
    "IExecutionContext.execute_async_v3",
)


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


def missing_api(trt: Any) -> list[str]:
    """The names of REQUIRED_API (and of the explicit-batch flag before TensorRT 10) that the
    ``tensorrt`` module ``trt`` lacks."""
    names = list(REQUIRED_API)
    if _version_tuple(trt.__version__) < (10, 0):
        names.append("NetworkDefinitionCreationFlag.EXPLICIT_BATCH")
    missing = []
    for name in names:
        owner: Any = trt
        for part in name.split("."):
            owner = getattr(owner, part, None)
            if owner is None:
                missing.append(name)
                break
    return missing


def has_fp16_flag(trt: Any) -> bool:
    """Whether this TensorRT chooses FP16 kernels itself (``BuilderFlag.FP16``, < 11)."""
    return hasattr(trt.BuilderFlag, "FP16")


def onnx_precision(trt: Any, precision: str) -> str:
    """Precision of the ONNX export an engine of ``precision`` is built from (module doc)."""
    return "fp16" if precision == "fp16" and not has_fp16_flag(trt) else "fp32"


def fast_fp16(compute_capability: tuple[int, int]) -> bool:
    """Whether a GPU of this compute capability has full-rate FP16 arithmetic: Volta (7.0)
    and later, and the Tegra/P100 parts 5.3, 6.0 and 6.2; not Maxwell 5.0/5.2 nor the consumer
    Pascal 6.1 (1/64 rate). Replaces ``Builder.platform_has_fast_fp16``, which TensorRT 10
    deprecated and 11 removed."""
    return compute_capability >= (7, 0) or compute_capability in ((5, 3), (6, 0), (6, 2))


def _create(what: str, factory: Any, *args: Any) -> Any:
    """``factory(*args)`` for a TensorRT object, ModelError when TensorRT cannot create it
    (the bindings raise TypeError "factory function returned nullptr", e.g. without a usable
    CUDA driver, or return None)."""
    try:
        made = factory(*args)
    except (TypeError, RuntimeError) as exc:
        made, detail = None, f": {exc}"
    else:
        detail = ""
    if made is None:
        raise ModelError(
            f"TensorRT could not create {what}{detail} (see the TensorRT log above); check "
            "that the CUDA driver works and matches this TensorRT build"
        )
    return made


def build_serialized_engine(
    trt: Any,
    logger: Any,
    onnx_path: Path,
    precision: str,
    max_batch_size: int,
    max_workspace_size: int,
    graph_precision: str = "fp32",
) -> bytes:
    """Serialized engine of ``onnx_path`` (dynamic batch 1..max_batch_size).

    precision:       "fp32" or "fp16", the engine's precision.
    graph_precision: precision of the export at ``onnx_path``; an fp16 engine needs either
                     the FP16 builder flag (TensorRT < 11) or an fp16 graph.
    """
    if precision == "fp16" and graph_precision != "fp16" and not has_fp16_flag(trt):
        raise ModelError(
            f"TensorRT {trt.__version__} builds strongly typed networks only (no FP16 builder "
            f"flag), so an FP16 engine needs the fp16 export; {onnx_path} is {graph_precision}"
        )
    builder = _create("a builder", trt.Builder, logger)
    flags = 0
    if _version_tuple(trt.__version__) < (10, 0):
        # Explicit batch is a flag before 10.0 and the only mode from 10.0 (flag deprecated).
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = _create("a network definition", builder.create_network, flags)
    parser = _create("an ONNX parser", trt.OnnxParser, network, logger)
    if not parser.parse(onnx_path.read_bytes(), str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ModelError(f"TensorRT cannot parse {onnx_path}: {'; '.join(errors)}")
    config = _create("a builder config", builder.create_builder_config)
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(max_workspace_size))
    if precision == "fp16" and has_fp16_flag(trt):
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
        torch = self.torch
        pairs = {
            "FLOAT": torch.float32,
            "HALF": torch.float16,
            "BF16": torch.bfloat16,  # TensorRT >= 10
            "INT32": torch.int32,
            "INT64": torch.int64,  # TensorRT >= 10
            "INT8": torch.int8,
            "UINT8": torch.uint8,
            "BOOL": torch.bool,
        }
        table = {
            getattr(self.trt.DataType, name): value
            for name, value in pairs.items()
            if hasattr(self.trt.DataType, name)
        }
        if dtype not in table:
            raise ModelError(f"{self.path}: unsupported tensor type {dtype}")
        return table[dtype]

    def _bind(self, name: str, tensor: Any) -> None:
        if not self.context.set_tensor_address(name, tensor.data_ptr()):
            raise ModelError(f"TensorRT engine {self.path.name}: cannot bind tensor {name}")

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
                self._bind(name, tensor)
                bound.append(tensor)  # keeps the buffer alive until the engine has run
            shape = tuple(self.context.get_tensor_shape(self.output))
            if any(d < 0 for d in shape):
                raise ModelError(f"{self.path.name}: output shape unresolved: {shape}")
            out = torch.empty(shape, dtype=self.dtypes[self.output], device="cuda")
            self._bind(self.output, out)
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
        missing = missing_api(trt)
        if missing:
            return f"TensorRT {trt.__version__} lacks {', '.join(missing)} (used by this backend)"
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

        from slfm_ros.core.backends.onnx_export import find_or_export

        if device != "cuda":
            raise ModelError("the TensorRT backend runs only on device 'cuda'")
        precision = "fp16" if options.enable_fp16 else "fp32"
        graph_precision = onnx_precision(trt, precision)
        try:
            manifest, where = find_or_export(
                source, graph_precision, options.opset, options.model_file_path, cache_root(options)
            )
        except ModelError as exc:
            if graph_precision == "fp32" or not options.model_file_path:
                raise
            raise ModelError(
                f"{exc} (TensorRT {trt.__version__} has no FP16 builder flag: with "
                "enable_fp16 it builds from an fp16 export, `slfm export --fp16`)"
            ) from exc
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = _create("a runtime", trt.Runtime, logger)
        major, minor = torch.cuda.get_device_capability()
        notes = [where]
        if precision == "fp16":
            how = (
                "builder flag on the fp32 graph"
                if graph_precision == "fp32"
                else "strongly typed fp16 export"
            )
            notes.append(f"FP16 via the {how}")
            if not fast_fp16((major, minor)):
                notes.append(
                    f"this GPU (compute capability {major}.{minor}) has no fast FP16; "
                    + (
                        "TensorRT will mostly pick FP32 kernels"
                        if graph_precision == "fp32"
                        else "the fp16 graph may run slower than fp32"
                    )
                )

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
                    graph_precision,
                )

            cached = load_or_build(
                engine_path,
                key,
                build,
                deserialize,
                force_rebuild=options.force_engine_update,
                info={
                    "onnx": str(onnx_path),
                    "onnx_precision": graph_precision,
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

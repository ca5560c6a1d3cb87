"""ONNX export of the SLfM networks, its manifest, and the parity check against PyTorch.

An export directory holds

    audio.onnx    features (B, 4, F, T) float32 -> azimuth (B,) float32, radians (left +)
    visual.onnx   image_0, image_1 (B, 3, H, W) float32 -> yaw (B,) float32, radians,
                  yaw_1 - yaw_0
    export.json   manifest: format, the model card's sha256 and the weights' sha256, the model
                  config, opset, precision, each file's sha256 and tensors, the parity report

with a dynamic batch dimension B. The STFT features (``slfm_ros.core.dsp.stft``) and the image
resize/normalisation (``preprocess_images_numpy``) stay outside the graphs: they are cheap
numpy code that every backend shares, and TensorRT's ONNX parser has no STFT operator, so
keeping them out gives one feature implementation for all backends.

Each ONNX file also carries the hashes in its ``metadata_props`` (keys ``slfm_ros.*``), so an
engine or a deployment can be tied to the model card it came from without the manifest.

Precision: ``fp32`` is the traced graph; ``fp16`` converts weights and activations to half with
ONNX Runtime's float16 converter, keeping float32 inputs and outputs so callers do not change.
TensorRT before version 11 builds FP16 engines from the fp32 export (its own precision flag);
TensorRT 11 and later build only strongly typed networks and take the fp16 export. ONNX Runtime
on a GPU uses the fp16 export too.

Parity: after exporting, ONNX Runtime (CPU) runs both graphs on simulated inputs (a rendered
scene from ``slfm_ros.core.sim``: binaural room audio and camera views) at several batch sizes,
and the maximum absolute difference to PyTorch (FP32) must stay within PARITY_TOLERANCE_RAD
(1e-4 rad for fp32; 1e-2 rad = 0.57 deg for fp16, where half precision rounding of the
activations dominates). Files are written to a temporary folder and moved into place only
after the parity check passes; an existing export of a different model is never overwritten.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from slfm_ros.core.backends.model_source import ModelSource, read_model_source
from slfm_ros.core.cache_dir import default_cache_dir
from slfm_ros.core.errors import ConfigError, ModelError, SlfmError
from slfm_ros.core.hashing import sha256_file
from slfm_ros.core.models.config import AnyModelConfig, ModelConfig

if TYPE_CHECKING:
    from slfm_ros.core.models.checkpoint import LoadedModel

MANIFEST_FILE = "export.json"
MANIFEST_FORMAT = 1
AUDIO_FILE = "audio.onnx"
VISUAL_FILE = "visual.onnx"
AUDIO_INPUT = "features"
AUDIO_OUTPUT = "azimuth"
VISUAL_INPUTS = ("image_0", "image_1")
VISUAL_OUTPUT = "yaw"
DEFAULT_OPSET = 17
PRECISIONS = ("fp32", "fp16")
PARITY_TOLERANCE_RAD = {"fp32": 1e-4, "fp16": 1e-2}
METADATA_PREFIX = "slfm_ros."

Float32 = npt.NDArray[np.float32]


# --------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class ExportManifest:
    """A read export directory (see module doc)."""

    directory: Path
    data: dict[str, Any]

    @property
    def precision(self) -> str:
        return str(self.data["precision"])

    @property
    def opset(self) -> int:
        return int(self.data["opset"])

    @property
    def card_sha256(self) -> str:
        return str(self.data["card_sha256"])

    @property
    def weights_sha256(self) -> str:
        return str(self.data["weights_sha256"])

    @property
    def audio_path(self) -> Path:
        return self.directory / str(self.data["files"]["audio"]["path"])

    @property
    def visual_path(self) -> Path:
        return self.directory / str(self.data["files"]["visual"]["path"])

    @property
    def parity(self) -> dict[str, Any]:
        return dict(self.data.get("parity") or {})


def read_export(directory: str | os.PathLike[str]) -> ExportManifest:
    """Read ``directory/export.json``; ModelError when it is missing or malformed."""
    path = Path(directory)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelError(
            f"no ONNX export at {path} ({MANIFEST_FILE} missing); create one with "
            "`slfm export --model MODEL_DIR --out DIR`"
        )
    try:
        data = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{manifest_path} is unreadable: {exc}") from exc
    required = ("format", "card_sha256", "weights_sha256", "opset", "precision", "files")
    missing = [k for k in required if not isinstance(data, dict) or k not in data]
    if missing:
        raise ModelError(f"{manifest_path} lacks {missing}; re-export the model")
    if data["format"] != MANIFEST_FORMAT:
        raise ModelError(
            f"{manifest_path} has format {data['format']!r}, this version reads "
            f"{MANIFEST_FORMAT}; re-export the model"
        )
    files = data["files"]
    if not isinstance(files, dict) or not all(
        isinstance(files.get(n), dict) and "path" in files[n] for n in ("audio", "visual")
    ):
        raise ModelError(f"{manifest_path}: 'files' must describe 'audio' and 'visual'")
    return ExportManifest(path, data)


def export_problems(manifest: ExportManifest, source: ModelSource | None = None) -> list[str]:
    """Why ``manifest`` cannot serve ``source`` (or is damaged); empty when usable."""
    problems = []
    if source is not None:
        if manifest.card_sha256 != source.card_sha256:
            problems.append(
                f"exported from model card sha256 {manifest.card_sha256[:12]}..., the model "
                f"at {source.path} has {source.card_sha256[:12]}..."
            )
        if manifest.weights_sha256 != source.weights_sha256:
            problems.append("exported from other weights than the model card lists")
    for name in ("audio", "visual"):
        entry = manifest.data["files"][name]
        file_path = manifest.directory / str(entry["path"])
        if not file_path.is_file():
            problems.append(f"{file_path} is missing")
        elif sha256_file(file_path) != entry.get("sha256"):
            problems.append(f"{file_path} differs from the sha256 in {MANIFEST_FILE}")
    return problems


# --------------------------------------------------------------------------- parity inputs
@dataclass
class ParityInputs:
    """Network inputs for the parity check.

    features: (N, 4, F, T) float32; image_0, image_1: (M, 3, H, W) float32.
    source:   "sim" (rendered scenes) or "synthetic" (noise with an interaural delay and
              panorama crops), with the reason when the simulator could not be used.
    """

    features: Float32
    image_0: Float32
    image_1: Float32
    source: str


def _pairs(images: list[npt.NDArray[np.uint8]], config: AnyModelConfig) -> tuple[Float32, Float32]:
    from slfm_ros.core.models.visual_pose import preprocess_images_numpy

    batch = preprocess_images_numpy(images, config.visual)
    first = [0] * (len(images) - 1) + list(range(1, len(images)))
    second = list(range(1, len(images))) + [0] * (len(images) - 1)
    return batch[first], batch[second]


def window_features(config: AnyModelConfig, window: npt.NDArray[np.float32]) -> Float32:
    """The audio network's input of one window at the model rate (either family)."""
    if isinstance(config, ModelConfig):
        from slfm_ros.core.dsp.stft import binaural_features

        return binaural_features(window, config.audio.stft_config())
    return config.audio.features(window)


def _sim_inputs(config: AnyModelConfig, samples: int, seed: int) -> ParityInputs:
    from slfm_ros.core.sim.scene import SceneConfig, sample_rng, sample_scene

    audio_cfg = config.audio
    scene_cfg = SceneConfig(
        sample_rate=audio_cfg.sample_rate,
        clip_seconds=audio_cfg.clip_samples / audio_cfg.sample_rate,
    )
    features: list[Float32] = []
    first: list[Float32] = []
    second: list[Float32] = []
    for index in range(samples):
        sample = sample_scene(scene_cfg, sample_rng(seed, "test", index), "test", index)
        clips = sample.audio[:, : audio_cfg.clip_samples]
        features.extend(window_features(config, clip) for clip in clips)
        a, b = _pairs(list(sample.images), config)
        first.append(a)
        second.append(b)
    return ParityInputs(np.stack(features), np.concatenate(first), np.concatenate(second), "sim")


def _synthetic_inputs(
    config: AnyModelConfig, samples: int, seed: int, note: str = ""
) -> ParityInputs:
    from slfm_ros.core.sim.synthetic_stream import SyntheticScene, SyntheticStream

    audio_cfg = config.audio
    rng = np.random.default_rng(seed)
    features, first, second = [], [], []
    for index in range(samples):
        scene = SyntheticScene(
            azimuth_rad=float(rng.uniform(-1.4, 1.4)),
            sample_rate=audio_cfg.sample_rate,
            yaw_rate_rad_s=float(rng.uniform(-0.6, 0.6)),
            fps=5.0,
            seed=seed + index,
        )
        stream = SyntheticStream(scene, duration_s=3 * audio_cfg.clip_seconds)
        clip = audio_cfg.clip_samples
        for start in (0, clip, 2 * clip):
            features.append(window_features(config, stream.audio[start : start + clip]))
        stamps = stream.image_stamps()
        views = [stream.image_at(stamps[i]) for i in (0, len(stamps) // 2, len(stamps) - 1)]
        a, b = _pairs(views, config)
        first.append(a)
        second.append(b)
    source = "synthetic" + (f" ({note})" if note else "")
    return ParityInputs(np.stack(features), np.concatenate(first), np.concatenate(second), source)


def parity_inputs(
    config: AnyModelConfig, source: str = "sim", samples: int = 2, seed: int = 0
) -> ParityInputs:
    """Inputs of ``samples`` simulated scenes (3 views each: 3 audio clips, 4 image pairs).

    source "sim" renders scenes with the simulator; should that fail (a missing optional
    dependency), the synthetic stream is used and ``ParityInputs.source`` says why.
    """
    if source not in ("sim", "synthetic"):
        raise ConfigError(f"parity source: expected 'sim' or 'synthetic', got {source!r}")
    if source == "sim":
        try:
            return _sim_inputs(config, samples, seed)
        except (SlfmError, ImportError, OSError) as exc:
            return _synthetic_inputs(
                config, samples, seed, f"simulator unavailable: {type(exc).__name__}: {exc}"
            )
    return _synthetic_inputs(config, samples, seed)


# --------------------------------------------------------------------------- parity check
@dataclass
class ParityReport:
    """Largest |ONNX Runtime - PyTorch| over the parity inputs, radians."""

    audio_max_abs_rad: float
    visual_max_abs_rad: float
    tolerance_rad: float
    audio_windows: int
    visual_pairs: int
    batch_sizes: list[int]
    source: str

    @property
    def passed(self) -> bool:
        return max(self.audio_max_abs_rad, self.visual_max_abs_rad) <= self.tolerance_rad

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        return out


def _batches(n: int) -> list[slice]:
    """Slices covering 0..n with batch sizes 1, then 2, then the rest (dynamic batch check)."""
    bounds = [0, min(1, n), min(3, n), n]
    return [slice(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def check_parity(
    model: LoadedModel,
    audio_path: Path,
    visual_path: Path,
    inputs: ParityInputs,
    precision: str = "fp32",
) -> ParityReport:
    """Run both ONNX files with ONNX Runtime (CPU, one thread) and PyTorch on ``inputs``."""
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    audio_session = ort.InferenceSession(str(audio_path), options, providers=providers)
    visual_session = ort.InferenceSession(str(visual_path), options, providers=providers)
    audio_net = model.audio_net.float().eval()
    visual_net = model.visual_net.float().eval()
    audio_diff = visual_diff = 0.0
    with torch.inference_mode():
        for part in _batches(len(inputs.features)):
            x = inputs.features[part]
            got = audio_session.run([AUDIO_OUTPUT], {AUDIO_INPUT: x})[0]
            ref = audio_net(torch.from_numpy(x)).numpy()
            audio_diff = max(audio_diff, float(np.max(np.abs(got - ref))))
        for part in _batches(len(inputs.image_0)):
            a, b = inputs.image_0[part], inputs.image_1[part]
            got = visual_session.run([VISUAL_OUTPUT], {VISUAL_INPUTS[0]: a, VISUAL_INPUTS[1]: b})[0]
            ref = visual_net(torch.from_numpy(a), torch.from_numpy(b)).numpy()
            visual_diff = max(visual_diff, float(np.max(np.abs(got - ref))))
    for name, value in (("audio", audio_diff), ("visual", visual_diff)):
        if not math.isfinite(value):
            raise ModelError(f"parity check: the {name} network gave non-finite outputs")
    return ParityReport(
        audio_max_abs_rad=audio_diff,
        visual_max_abs_rad=visual_diff,
        tolerance_rad=PARITY_TOLERANCE_RAD[precision],
        audio_windows=len(inputs.features),
        visual_pairs=len(inputs.image_0),
        batch_sizes=sorted({s.stop - s.start for s in _batches(len(inputs.features))}),
        source=inputs.source,
    )


# --------------------------------------------------------------------------- export
@dataclass
class ExportResult:
    """What ``export_model`` did: the manifest, and whether an identical export was reused."""

    manifest: ExportManifest
    reused: bool
    parity: ParityReport | None = None
    messages: list[str] = field(default_factory=list)


def _export_graph(
    net: Any,
    args: tuple[Any, ...],
    path: Path,
    input_names: list[str],
    output_name: str,
    opset: int,
) -> None:
    import torch

    axes = {name: {0: "batch"} for name in [*input_names, output_name]}
    with warnings.catch_warnings():
        # The TorchScript exporter warns about its deprecation and about traced shape checks
        # (the networks' input validation), neither of which affects the graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            args,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=input_names,
            output_names=[output_name],
            dynamic_axes=axes,
            do_constant_folding=True,
        )


def _sort_nodes(graph: Any) -> None:
    """Order ``graph.node`` topologically (the float16 converter appends its input casts at
    the end, which ONNX Runtime accepts but the ONNX checker and other runtimes do not)."""
    nodes = list(graph.node)
    producer = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    ordered: list[int] = []
    state = [0] * len(nodes)  # 0 new, 1 visiting, 2 done
    for root in range(len(nodes)):
        stack = [(root, False)]
        while stack:
            index, expanded = stack.pop()
            if expanded:
                state[index] = 2
                ordered.append(index)
                continue
            if state[index]:
                continue
            state[index] = 1
            stack.append((index, True))
            for name in nodes[index].input:
                dep = producer.get(name)
                if dep is not None and state[dep] == 0:
                    stack.append((dep, False))
    del graph.node[:]
    graph.node.extend(nodes[i] for i in ordered)


def _finish_graph(path: Path, metadata: dict[str, str], precision: str, network: str) -> None:
    """Convert to fp16 if asked, and store the slfm_ros metadata in the ONNX file."""
    import onnx

    graph = onnx.load(str(path))
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = convert_float_to_float16(graph, keep_io_types=True)
        _sort_nodes(graph.graph)
    del graph.metadata_props[:]
    for key, value in {**metadata, "network": network}.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, value
    graph.producer_name = "slfm_ros"
    graph.doc_string = (
        f"slfm_ros {network} network; inputs and outputs documented in "
        "slfm_ros.core.backends.onnx_export"
    )
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))


def onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``slfm_ros.*`` metadata of an ONNX file, prefix removed."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False)
    return {
        p.key[len(METADATA_PREFIX) :]: p.value
        for p in graph.metadata_props
        if p.key.startswith(METADATA_PREFIX)
    }


def _existing_export(
    out: Path, wanted: dict[str, Any], source: ModelSource
) -> ExportManifest | None:
    """The usable identical export in ``out``, None when ``out`` is free; ModelError when it
    holds something else."""
    if (out / MANIFEST_FILE).is_file():
        manifest = read_export(out)
        same = all(manifest.data.get(k) == v for k, v in wanted.items())
        if not same:
            held = {k: manifest.data.get(k) for k in wanted}
            raise ModelError(
                f"{out} already holds a different export ({held}); choose another --out "
                "folder or remove it"
            )
        if export_problems(manifest, source):
            return None  # same model, damaged files: rewrite them
        return manifest
    clashes = [p.name for p in (out / AUDIO_FILE, out / VISUAL_FILE) if p.exists()]
    if clashes:
        raise ModelError(
            f"{out} holds {clashes} but no {MANIFEST_FILE}; choose another --out folder "
            "or remove them"
        )
    return None


def export_model(
    model_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    parity: bool = True,
    parity_source: str = "sim",
    progress: Callable[[str], None] | None = None,
    camera: tuple[float, float] | None = None,
) -> ExportResult:
    """Export the model in ``model_dir`` to ``out_dir`` (see module doc).

    camera: (horizontal FOV, pitch) in degrees the visual network is set up for
    (``follow_camera``); None = the card's camera.

    An identical export already in ``out_dir`` (same card hash, opset and precision, intact
    files) is reused; a different one raises ModelError. A failed parity check raises
    ModelError and leaves ``out_dir`` untouched.
    """
    import torch

    from slfm_ros.core.models.checkpoint import load_model

    if not 7 <= opset <= 21:
        raise ConfigError(f"opset: expected 7..21 (17 recommended), got {opset}")
    precision = "fp16" if fp16 else "fp32"
    say = progress or (lambda _message: None)
    source = read_model_source(model_dir, camera)
    out = Path(out_dir)
    wanted = {
        "card_sha256": source.card_sha256,
        "weights_sha256": source.weights_sha256,
        "opset": opset,
        "precision": precision,
    }
    existing = _existing_export(out, wanted, source)
    if existing is not None:
        return ExportResult(existing, reused=True, messages=[f"{out} already holds this export"])

    model = load_model(source.path, camera=source.camera)
    config = model.config
    metadata = {
        "card_sha256": source.card_sha256,
        "weights_sha256": source.weights_sha256,
        "model_name": config.name,
        "model_config": json.dumps(config.to_dict(), sort_keys=True),
        "precision": precision,
        "opset": str(opset),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        audio_path, visual_path = staging / AUDIO_FILE, staging / VISUAL_FILE
        vcfg = config.visual
        example_audio = torch.zeros((2, *config.audio.feature_shape))
        example_image = torch.zeros((2, 3, vcfg.image_height, vcfg.image_width))
        say(f"exporting the audio network ({config.name}) to ONNX opset {opset}")
        _export_graph(
            model.audio_net, (example_audio,), audio_path, [AUDIO_INPUT], AUDIO_OUTPUT, opset
        )
        say("exporting the visual network")
        _export_graph(
            model.visual_net,
            (example_image, example_image),
            visual_path,
            list(VISUAL_INPUTS),
            VISUAL_OUTPUT,
            opset,
        )
        _finish_graph(audio_path, metadata, precision, "audio")
        _finish_graph(visual_path, metadata, precision, "visual")
        report = None
        if parity:
            say(f"parity check (ONNX Runtime vs PyTorch, {parity_source} inputs)")
            inputs = parity_inputs(config, parity_source)
            report = check_parity(model, audio_path, visual_path, inputs, precision)
            if not report.passed:
                raise ModelError(
                    f"parity check failed: max |ONNX - PyTorch| audio "
                    f"{report.audio_max_abs_rad:.3g} rad, visual {report.visual_max_abs_rad:.3g} "
                    f"rad, allowed {report.tolerance_rad:g} rad ({precision}); nothing was "
                    "written. Try another --opset"
                )
        import onnx
        import onnxruntime

        manifest = {
            "format": MANIFEST_FORMAT,
            **wanted,
            "model_dir": str(source.path.resolve()),
            "model_name": config.name,
            "model_config": config.to_dict(),
            "files": {
                "audio": {
                    "path": AUDIO_FILE,
                    "sha256": sha256_file(audio_path),
                    "inputs": {AUDIO_INPUT: ["batch", *config.audio.feature_shape]},
                    "outputs": {AUDIO_OUTPUT: ["batch"]},
                },
                "visual": {
                    "path": VISUAL_FILE,
                    "sha256": sha256_file(visual_path),
                    "inputs": {
                        n: ["batch", 3, vcfg.image_height, vcfg.image_width] for n in VISUAL_INPUTS
                    },
                    "outputs": {VISUAL_OUTPUT: ["batch"]},
                },
            },
            "outside_graph": "STFT features (slfm_ros.core.dsp.stft.binaural_features) and "
            "image resize/normalisation (preprocess_images_numpy)",
            "parity": report.to_dict() if report else None,
            "versions": {
                "torch": torch.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__,
            },
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        out.mkdir(parents=True, exist_ok=True)
        # Graphs first, manifest last: a manifest always describes complete files.
        (out / MANIFEST_FILE).unlink(missing_ok=True)
        for name in (AUDIO_FILE, VISUAL_FILE, MANIFEST_FILE):
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(read_export(out), reused=False, parity=report)


# --------------------------------------------------------------------------- lookup for backends
def cached_export_dir(source: ModelSource, precision: str, opset: int, cache_dir: Path) -> Path:
    """Where the automatic export of ``source`` lives in the cache."""
    return cache_dir / "onnx" / f"{source.card_sha256[:16]}-opset{opset}-{precision}"


def find_or_export(
    source: ModelSource,
    precision: str = "fp32",
    opset: int = DEFAULT_OPSET,
    export_dir: str | os.PathLike[str] = "",
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[ExportManifest, str]:
    """The ONNX export of ``source`` in ``precision`` and a note on where it came from.

    export_dir given (``model_file_path``): it must hold an export of exactly this model card
    and precision, else ModelError; nothing is re-exported behind the user's back. Otherwise
    ``<model_dir>/onnx`` (or ``onnx_fp16``) is used when it matches, and failing that an export
    in the cache, created on first use (this needs PyTorch).
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if export_dir:
        manifest = read_export(export_dir)
        problems = export_problems(manifest, source)
        if manifest.precision != precision:
            problems.append(f"precision {manifest.precision}, needed {precision}")
        if problems:
            raise ModelError(
                f"ONNX export {export_dir} cannot be used for {source.path}: "
                + "; ".join(problems)
                + ". Re-export with `slfm export`"
            )
        return manifest, f"ONNX export {export_dir}"
    shipped = source.path / ("onnx" if precision == "fp32" else "onnx_fp16")
    if (shipped / MANIFEST_FILE).is_file():
        manifest = read_export(shipped)
        if manifest.precision == precision and not export_problems(manifest, source):
            return manifest, f"ONNX export {shipped}"
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cached_export_dir(source, precision, opset, cache)
    if (target / MANIFEST_FILE).is_file():
        manifest = read_export(target)
        if not export_problems(manifest, source):
            return manifest, f"cached ONNX export {target}"
        shutil.rmtree(target)  # a damaged cache entry is rebuilt, never used
    result = export_model(
        source.path,
        target,
        opset=opset,
        fp16=precision == "fp16",
        parity_source="synthetic",
        camera=source.camera,
    )
    return result.manifest, f"ONNX export created on first use in {target}"

"""Results table and plots of a learned model on a simulated split, next to the baselines.

``run_report`` scores, on one split written by ``slfm simulate``:

- the learned model (row "slfm") and any further models (``--compare LABEL=DIR``), audio and
  camera yaw, through the same inference backends the node uses;
- classical baselines: audio ones (gcc_phat_onset, gcc_phat, iid, srp_phat, music) fill only the
  audio columns, visual ones (orb, sift, cylinder) only the yaw columns.

Every row is scored by ``evaluate_synthetic`` with the protocol of ``metrics`` (audio errors
front-folded; declined estimates count as a 0 rad prediction, and the valid fraction says how
many were declined). ``write_report`` writes, into the output folder,

    results.md                 the table, the published numbers and the producing command
    results.json               the same rows, machine-readable (``slfm eval synthetic`` names)
    audio_error_vs_angle.png   absolute azimuth error over the true azimuth, per audio row
    yaw_error_vs_angle.png     absolute yaw error over the true turn, per yaw row
    error_histograms.png       error histograms, audio and yaw panels
    audio_scatter.png          predicted (front-folded) vs true azimuth, identity line
    yaw_scatter.png            predicted vs true turn, identity line

Files of these names are replaced (atomically); nothing else in the folder is touched. Plots
show valid estimates only; the legend counts the declined ones.
"""

from __future__ import annotations

import functools
import io
import json
import math
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from slfm_ros.core.atomic_io import atomic_write_bytes, atomic_write_text
from slfm_ros.core.errors import ConfigError, ModelError
from slfm_ros.evaluation.metrics import azimuth_errors, yaw_errors

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from slfm_ros.core.estimators.base import AudioEstimator, VisualEstimator
    from slfm_ros.evaluation.synthetic_eval import AudioFactory, SyntheticResult

AUDIO_BASELINES = ("gcc_phat", "gcc_phat_onset", "iid", "srp_phat", "music")
VISUAL_BASELINES = ("orb", "sift", "cylinder")
DEFAULT_BASELINES = ("gcc_phat", "gcc_phat_onset", "iid", "orb")
LEARNED_LABEL = "slfm"

RESULTS_MD = "results.md"
RESULTS_JSON = "results.json"
AUDIO_ERROR_PLOT = "audio_error_vs_angle.png"
YAW_ERROR_PLOT = "yaw_error_vs_angle.png"
HISTOGRAM_PLOT = "error_histograms.png"
AUDIO_SCATTER_PLOT = "audio_scatter.png"
YAW_SCATTER_PLOT = "yaw_scatter.png"
PLOT_FILES = (
    AUDIO_ERROR_PLOT,
    YAW_ERROR_PLOT,
    HISTOGRAM_PLOT,
    AUDIO_SCATTER_PLOT,
    YAW_SCATTER_PLOT,
)

EMPTY_CELL = "–"
# (header, key in a row's metrics, format) of the results table, in column order.
TABLE_COLUMNS = (
    ("audio MAE (deg)", "azimuth_mae_deg", "{:.2f}"),
    ("audio median (deg)", "azimuth_median_deg", "{:.2f}"),
    ("left/right acc.", "lr_accuracy", "{:.3f}"),
    ("audio valid", "azimuth_valid_fraction", "{:.3f}"),
    ("yaw MAE (deg)", "yaw_mae_deg", "{:.2f}"),
    ("yaw median (deg)", "yaw_median_deg", "{:.2f}"),
    ("yaw valid", "yaw_valid_fraction", "{:.3f}"),
    ("yaw MAE, turns >= 60° (deg)", "yaw_mae_large_turns_deg", "{:.2f}"),
    ("wrong sign, turns >= 60°", "yaw_wrong_sign_large_turns", "{:.3f}"),
)


@dataclass(frozen=True)
class PublishedRow:
    """A number of the reference paper (HM3D-SS, speech); None where it reports none."""

    method: str
    azimuth_mae_deg: float | None
    yaw_mae_deg: float | None


PUBLISHED_BENCHMARK = "HM3D-SS speech"
PUBLISHED = (
    PublishedRow("SLfM (self-supervised)", 3.17, 0.77),
    PublishedRow("supervised", 1.71, 0.46),
    PublishedRow("SIFT", None, 12.2),
    PublishedRow("SuperGlue", None, 2.47),
)


@dataclass
class ReportRow:
    """One estimator's scores. kind: "learned", "audio baseline" or "visual baseline"."""

    label: str
    kind: str
    result: SyntheticResult
    model_dir: str | None = None
    backend: str | None = None

    def metrics(self) -> dict[str, Any]:
        """The flat scores of ``SyntheticResult.as_dict`` (n = samples, audio_n, yaw_n, ...)."""
        return self.result.as_dict()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "kind": self.kind}
        if self.kind == "learned":
            out["model_dir"] = self.model_dir
            out["backend"] = self.backend
        out.update(self.metrics())
        return out


@dataclass
class Report:
    """Everything ``write_report`` writes. model_dir/backend: the "slfm" row's model."""

    data_dir: str
    split: str
    samples: int
    model_dir: str
    backend: str
    rows: list[ReportRow] = field(default_factory=list)
    command: str = ""

    def counts(self) -> tuple[int | None, int | None]:
        """(audio clips, view pairs) scored per row; None where no row scores that part."""
        audio = next((r.result.audio.report.n for r in self.rows if r.result.audio), None)
        yaw = next((r.result.rotation.report.n for r in self.rows if r.result.rotation), None)
        return audio, yaw

    def _uniform_rows(self) -> list[dict[str, Any]]:
        """Row dicts with the same keys; a metric a row does not score is None."""
        rows = [row.as_dict() for row in self.rows]
        keys = list(dict.fromkeys(k for row in rows for k in row))
        return [{k: row.get(k) for k in keys} for row in rows]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes null); every row has every key (None where not scored)."""
        audio_n, yaw_n = self.counts()
        out: dict[str, Any] = {
            "data": self.data_dir,
            "split": self.split,
            "n": self.samples,
            "audio_n": audio_n,
            "yaw_n": yaw_n,
            "model_dir": self.model_dir,
            "backend": self.backend,
            "rows": self._uniform_rows(),
            "published": {
                "benchmark": PUBLISHED_BENCHMARK,
                "rows": [
                    {
                        "method": p.method,
                        "azimuth_mae_deg": p.azimuth_mae_deg,
                        "yaw_mae_deg": p.yaw_mae_deg,
                    }
                    for p in PUBLISHED
                ],
            },
            "command": self.command,
            "files": [RESULTS_MD, RESULTS_JSON, *PLOT_FILES],
        }
        return _json_clean(out)


def _json_clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_clean(v) for v in value]
    return value


def parse_baselines(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Baseline names from "gcc_phat,iid,orb" (or a list); None gives DEFAULT_BASELINES.

    An empty string means no baselines. Unknown or repeated names raise ConfigError.
    """
    if text is None:
        return DEFAULT_BASELINES
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [n.strip() for n in items if n.strip()]
    known = AUDIO_BASELINES + VISUAL_BASELINES
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown baseline(s) {', '.join(unknown)}: --baselines takes a comma list of "
            f"{', '.join(known)}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"--baselines names {', '.join(repeated)} more than once")
    return tuple(names)


def parse_compare(items: Iterable[str] | None) -> list[tuple[str, Path]]:
    """(label, model folder) pairs from "LABEL=DIR" strings; malformed ones raise ConfigError."""
    pairs: list[tuple[str, Path]] = []
    for item in items or ():
        label, sep, folder = item.partition("=")
        label, folder = label.strip(), folder.strip()
        if not sep or not label or not folder:
            raise ConfigError(
                f"--compare expects LABEL=DIR (e.g. supervised=out/supervised_small), got {item!r}"
            )
        if any(c in label for c in "|`\n"):
            raise ConfigError(f"--compare label {label!r} may not contain '|', '`' or newlines")
        pairs.append((label, Path(folder)))
    return pairs


def _check_labels(labels: Sequence[str]) -> None:
    repeated = sorted({n for n in labels if labels.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"row label(s) {', '.join(repeated)} used twice: a --compare label must differ from "
            f"'{LEARNED_LABEL}', the baselines and the other --compare labels"
        )


@dataclass(frozen=True)
class _Job:
    """A row to score: its estimators (None for a part it does not score)."""

    label: str
    kind: str
    audio: AudioEstimator | None
    visual: VisualEstimator | None
    model_dir: str | None = None
    backend: str | None = None
    # Set instead of ``audio`` on a dataset mixing receivers (see ``audio_scoring``).
    audio_factory: AudioFactory | None = None


def run_report(
    data_dir: str | Path,
    model: str | Path | None = None,
    backend: str = "auto",
    compare: Sequence[tuple[str, Path]] = (),
    baselines: Sequence[str] = DEFAULT_BASELINES,
    limit: int | None = None,
    progress: bool = False,
    command: str = "",
    label: str = LEARNED_LABEL,
) -> Report:
    """Score the learned model(s) and the baselines on the first ``limit`` samples (None = all).

    model: the folder of the row named ``label`` (None = the shipped default model);
    compare: further (label, folder) rows;
    baselines: names from AUDIO_BASELINES and VISUAL_BASELINES.
    Every estimator is built before the first one runs, so a missing model or an unknown name
    fails at once (ModelError, ConfigError, DatasetError for the data folder).
    """
    from slfm_ros.core.backends.model_source import read_model_source, trained_networks
    from slfm_ros.core.sim.dataset import ShardedDataset
    from slfm_ros.evaluation.estimators import (
        backend_label,
        build_audio_estimator,
        build_visual_estimator,
        resolve_model_dir,
    )
    from slfm_ros.evaluation.synthetic_eval import audio_scoring, evaluate_synthetic

    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    baselines = parse_baselines(list(baselines))
    _check_labels([label, *(name for name, _ in compare), *baselines])
    dataset = ShardedDataset(data_dir)
    hfov = math.radians(dataset.config.image.hfov_deg)
    pitch = math.radians(dataset.config.image.pitch_deg)

    jobs: list[_Job] = []
    for row_label, folder in [(label, model), *compare]:
        path = resolve_model_dir(folder)
        # A network no stage has trained (e.g. the visual one after the egomotion stage) is
        # left out of the row rather than scored as noise.
        trained = trained_networks(read_model_source(path))
        # The compact family's audio network takes the receiver's largest delay, so a learned
        # row gets each sample's receiver as the geometry-aware baselines do.
        audio, audio_factory = (
            audio_scoring(
                dataset,
                functools.partial(build_audio_estimator, "slfm", model=path, backend=backend),
            )
            if "audio" in trained
            else (None, None)
        )
        visual = (
            build_visual_estimator("slfm", hfov=hfov, pitch=pitch, model=path, backend=backend)
            if "visual" in trained
            else None
        )
        if audio is None and audio_factory is None and visual is None:
            raise ModelError(f"{path}: neither network of this model has been trained")
        label = backend_label(path, backend)
        jobs.append(_Job(row_label, "learned", audio, visual, str(path), label, audio_factory))
    for name in baselines:
        if name in AUDIO_BASELINES:
            audio_est, factory = audio_scoring(
                dataset, functools.partial(build_audio_estimator, name)
            )
            jobs.append(_Job(name, "audio baseline", audio_est, None, audio_factory=factory))
        else:
            visual = build_visual_estimator("classic", name, hfov=hfov, pitch=pitch)
            jobs.append(_Job(name, "visual baseline", None, visual))

    rows: list[ReportRow] = []
    for i, job in enumerate(jobs, start=1):
        if progress:
            print(f"[{i}/{len(jobs)}] {job.label}", file=sys.stderr, flush=True)
        result = evaluate_synthetic(
            dataset, job.audio, job.visual, limit, progress, job.audio_factory
        )
        rows.append(ReportRow(job.label, job.kind, result, job.model_dir, job.backend))
    return Report(
        data_dir=str(data_dir),
        split=dataset.split,
        samples=rows[0].result.samples,
        model_dir=str(rows[0].model_dir),
        backend=str(rows[0].backend),
        rows=rows,
        command=command,
    )


def report_command(
    data_dir: str | Path,
    model: str | Path | None = None,
    backend: str = "auto",
    compare: Iterable[str] = (),
    baselines: str | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    label: str = LEARNED_LABEL,
) -> str:
    """The ``slfm eval report`` command line that reproduces a report, shell-quoted."""
    argv = ["slfm", "eval", "report", "--data", str(data_dir)]
    if model is not None:
        argv += ["--model", str(model)]
    if label != LEARNED_LABEL:
        argv += ["--label", label]
    if backend != "auto":
        argv += ["--backend", backend]
    for item in compare:
        argv += ["--compare", item]
    if baselines is not None:
        argv += ["--baselines", baselines]
    if limit is not None:
        argv += ["--limit", str(limit)]
    if out is not None:
        argv += ["--out", str(out)]
    return shlex.join(argv)


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return EMPTY_CELL
    return fmt.format(value)


def table_cells(row: ReportRow) -> list[str]:
    """The row's cells of the results table (label first); columns it does not score are "–"."""
    metrics = row.metrics()
    return [row.label] + [_cell(metrics.get(key), fmt) for _, key, fmt in TABLE_COLUMNS]


def markdown(report: Report) -> str:
    """results.md: header, results table, published numbers, plots and the command."""
    audio_n, yaw_n = report.counts()
    parts = []
    if audio_n is not None:
        parts.append(f"{audio_n} audio clips")
    if yaw_n is not None:
        parts.append(f"{yaw_n} view pairs")
    lines = [
        "# Evaluation report",
        "",
        f"Data: `{report.data_dir}` (split {report.split}, {report.samples} samples: "
        f"{', '.join(parts)}); model: `{report.model_dir}` ({report.backend}).",
        "",
        "| estimator | " + " | ".join(h for h, _, _ in TABLE_COLUMNS) + " |",
        "|---|" + "---:|" * len(TABLE_COLUMNS),
    ]
    lines += ["| " + " | ".join(table_cells(row)) + " |" for row in report.rows]
    lines += [
        "",
        "Audio errors are front-folded (two ears cannot tell a source from its front/back "
        "mirror). A declined estimate counts as a 0 deg prediction in MAE, median and "
        "left/right accuracy; 'valid' is the fraction not declined.",
    ]
    learned = [r for r in report.rows if r.kind == "learned"]
    if len(learned) > 1:
        lines.append("")
        lines += [f"- {r.label}: `{r.model_dir}` ({r.backend})" for r in learned]
    lines += [
        "",
        f"## Published ({PUBLISHED_BENCHMARK})",
        "",
        "Numbers of the reference paper on its own benchmark, not on the data above.",
        "",
        "| method | audio MAE (deg) | camera yaw MAE (deg) |",
        "|---|---:|---:|",
    ]
    for p in PUBLISHED:
        audio = _cell(p.azimuth_mae_deg, "{:g}")
        yaw = _cell(p.yaw_mae_deg, "{:g}")
        lines.append(f"| {p.method} | {audio} | {yaw} |")
    lines += ["", "## Plots", ""]
    lines += [f"![{Path(name).stem.replace('_', ' ')}]({name})" for name in PLOT_FILES]
    lines += ["", "## Command", "", "```", report.command or "(not recorded)", "```"]
    return "\n".join(lines) + "\n"


@dataclass
class PlotSeries:
    """Valid estimates of one row, angles in degrees; ``declined`` counts the others."""

    label: str
    truth: npt.NDArray[np.float64]
    predicted: npt.NDArray[np.float64]
    error: npt.NDArray[np.float64]
    declined: int

    @property
    def legend(self) -> str:
        if self.declined:
            return f"{self.label} ({self.declined} declined, not shown)"
        return self.label


def _series(
    label: str,
    truth_rad: Sequence[float],
    predicted_rad: Sequence[float],
    valid: Sequence[bool],
    errors: Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], npt.ArrayLike],
    fold: bool = False,
) -> PlotSeries:
    """The valid estimates of one row in degrees; ``fold`` folds predictions to the front."""
    from slfm_ros.core.conventions import fold_to_front

    truth = np.asarray(truth_rad, dtype=np.float64)
    pred = np.asarray(predicted_rad, dtype=np.float64)
    ok = np.asarray(valid, dtype=bool) & np.isfinite(pred)
    truth, pred = truth[ok], pred[ok]
    if fold:
        pred = np.asarray(fold_to_front(pred), dtype=np.float64)
    err = np.asarray(errors(pred, truth), dtype=np.float64) if pred.size else np.zeros(0)
    return PlotSeries(label, np.degrees(truth), np.degrees(pred), np.degrees(err), int((~ok).sum()))


def plot_series(report: Report) -> tuple[list[PlotSeries], list[PlotSeries]]:
    """(audio, yaw) series of every row that scores that part, in row order."""
    audio: list[PlotSeries] = []
    yaw: list[PlotSeries] = []
    for row in report.rows:
        if row.result.audio is not None:
            clips = row.result.audio.records
            audio.append(
                _series(
                    row.label,
                    [c.azimuth for c in clips],
                    [c.predicted for c in clips],
                    [c.valid for c in clips],
                    azimuth_errors,
                    fold=True,
                )
            )
        if row.result.rotation is not None:
            pairs = row.result.rotation.records
            yaw.append(
                _series(
                    row.label,
                    [p.theta for p in pairs],
                    [p.predicted for p in pairs],
                    [p.valid for p in pairs],
                    yaw_errors,
                )
            )
    return audio, yaw


def _colors(report: Report) -> dict[str, str]:
    """One colour per row label, the same in every plot."""
    return {row.label: f"C{i % 10}" for i, row in enumerate(report.rows)}


def _no_data(ax: Axes, series: list[PlotSeries]) -> bool:
    if any(s.truth.size for s in series):
        return False
    ax.text(0.5, 0.5, "no valid estimates", ha="center", va="center", transform=ax.transAxes)
    return True


def _error_vs_angle(
    ax: Axes, series: list[PlotSeries], colors: dict[str, str], xlabel: str, ylabel: str
) -> None:
    """Faint points per estimate and the per-bin mean error as a line."""
    if not _no_data(ax, series):
        truths = np.concatenate([s.truth for s in series])
        edges = np.linspace(truths.min(), truths.max() + 1e-9, 13)
        for s in series:
            color = colors[s.label]
            ax.scatter(s.truth, s.error, s=6, alpha=0.25, color=color, linewidths=0)
            which = np.clip(np.digitize(s.truth, edges) - 1, 0, len(edges) - 2)
            centres, means = [], []
            for b in range(len(edges) - 1):
                if np.any(which == b):
                    centres.append(0.5 * (edges[b] + edges[b + 1]))
                    means.append(float(s.error[which == b].mean()))
            ax.plot(centres, means, "o-", ms=3, lw=1.3, color=color, label=s.legend)
        ax.set_yscale("symlog", linthresh=0.1, linscale=0.5)
        ax.legend(fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _histogram(ax: Axes, series: list[PlotSeries], colors: dict[str, str], xlabel: str) -> None:
    if not _no_data(ax, series):
        # Log-spaced bins: errors of a few tenths and of tens of degrees on one axis.
        edges = np.logspace(-2, math.log10(180.0), 36)
        for s in series:
            ax.hist(
                np.clip(s.error, edges[0], edges[-1]),
                bins=edges.tolist(),
                histtype="step",
                lw=1.4,
                color=colors[s.label],
                label=s.legend,
            )
        ax.set_xscale("log")
        ax.legend(fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("estimates")
    ax.grid(alpha=0.3)


def _scatter(
    ax: Axes, series: list[PlotSeries], colors: dict[str, str], xlabel: str, ylabel: str
) -> None:
    if not _no_data(ax, series):
        values = np.concatenate([np.r_[s.truth, s.predicted] for s in series])
        lo, hi = float(values.min()), float(values.max())
        pad = 0.05 * max(hi - lo, 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1.0, label="identity")
        for s in series:
            ax.scatter(s.truth, s.predicted, s=8, alpha=0.5, color=colors[s.label], label=s.legend)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal")
        ax.legend(fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _png(fig: Figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def render_plots(report: Report) -> dict[str, bytes]:
    """PNG bytes of every plot, by file name (see PLOT_FILES)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    audio, yaw = plot_series(report)
    colors = _colors(report)
    title = f"{Path(report.data_dir).name} ({report.split}, {report.samples} samples)"
    az_true = "true azimuth (deg, left +)"
    turn_true = "true camera turn (deg)"
    out: dict[str, bytes] = {}

    front_folded = "azimuth error, front-folded (deg)"
    single_panels = (
        (AUDIO_ERROR_PLOT, (7, 4), _error_vs_angle, audio, az_true, front_folded),
        (YAW_ERROR_PLOT, (7, 4), _error_vs_angle, yaw, turn_true, "camera yaw error (deg)"),
        (
            AUDIO_SCATTER_PLOT,
            (5.5, 5.5),
            _scatter,
            audio,
            az_true,
            "predicted azimuth, front-folded (deg)",
        ),
        (YAW_SCATTER_PLOT, (5.5, 5.5), _scatter, yaw, turn_true, "predicted camera turn (deg)"),
    )
    for name, size, draw, series, x_label, y_label in single_panels:
        fig, ax = plt.subplots(figsize=size)
        draw(ax, series, colors, x_label, y_label)
        ax.set_title(title, fontsize=9)
        out[name] = _png(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    _histogram(axes[0], audio, colors, front_folded)
    _histogram(axes[1], yaw, colors, "camera yaw error (deg)")
    axes[0].set_title("audio", fontsize=9)
    axes[1].set_title("camera yaw", fontsize=9)
    fig.suptitle(title, fontsize=9)
    out[HISTOGRAM_PLOT] = _png(fig)
    return out


def check_out_dir(folder: str | Path) -> Path:
    """``folder`` as a Path; ConfigError when it exists and is not a folder."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder; choose another --out")
    return out


def write_report(report: Report, folder: str | Path) -> list[Path]:
    """Write results.md, results.json and the plots into ``folder`` (created if needed).

    Only these files are written (each atomically, replacing a file of the same name); other
    files in the folder are left as they are. Returns the written paths.
    """
    out = check_out_dir(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        atomic_write_text(out / RESULTS_JSON, json.dumps(report.as_dict(), indent=1) + "\n"),
        atomic_write_text(out / RESULTS_MD, markdown(report)),
    ]
    for name, data in render_plots(report).items():
        written.append(atomic_write_bytes(out / name, data))
    return written

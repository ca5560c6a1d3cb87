"""Evaluation report of a replay: report.json, a markdown summary and PNG plots.

``build_report`` gathers the scores (``slfm_ros.bags.scoring``), what was run and what was
wrong with the input into one JSON-ready dict; ``write_report`` writes it to a folder as
report.json, summary.md and, when there are outputs, azimuth.png (azimuth over time with the
truth and the moment front/back was decided), yaw.png (camera yaw over time with the truth)
and errors.png (error histograms).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from slfm_ros.bags.reader import BagReader
from slfm_ros.bags.replay_offline import Replay
from slfm_ros.bags.scoring import score_replay

# Keys of the one-object JSON output, in print order (the metric names of ``slfm eval``).
SUMMARY_KEYS = (
    "azimuth_mae_deg",
    "azimuth_median_deg",
    "azimuth_mae_raw_deg",
    "azimuth_median_raw_deg",
    "lr_accuracy",
    "yaw_mae_deg",
    "yaw_median_deg",
    "coverage",
    "latency_p50_ms",
    "latency_p99_ms",
    "output_rate_hz",
)
PARAM_KEYS = (
    "estimator",
    "backend",
    "model_dir",
    "hop_s",
    "window_s",
    "audio_estimator",
    "visual_estimator",
    "receiver",
    "mic_spacing_m",
)


def build_report(
    reader: BagReader, replay: Replay, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One dict with the scores, the run's settings and the input problems (see module doc).

    ``partial`` is True when part of the bag could not be evaluated; ``problems`` says which
    part and why.
    """
    scores = score_replay(replay)
    series = scores.pop("series")
    plan, stats, log = replay.plan, replay.stats, replay.log
    problems = list(plan.problems)
    if reader.damage is not None:
        end = reader.expected_end_ns or reader.end_ns
        problems.append(reader.damage.describe(reader.start_ns, end))
    for topic, count in sorted(stats.unreadable.items()):
        problems.append(f"{topic}: {count} unreadable message(s) skipped ({stats.first_error})")
    if plan.audio_ok and not log.directions:
        problems.append("audio: no sound direction was produced (see events)")
    if log.fallback_reason:
        notes = [f"learned models not used: {log.fallback_reason}; the classical estimators ran"]
    else:
        notes = []
    report: dict[str, Any] = {
        "bag": str(reader.path),
        "mode": log.mode,
        "estimators": log.estimators,
        "backend": log.backend,
        "fallback_reason": log.fallback_reason,
        "ground_truth": stats.has_truth,
        "parts": {
            "audio": plan.audio if plan.audio_ok else None,
            "camera": plan.image if plan.camera_ok else None,
        },
        "partial": bool(
            problems
            and (not plan.audio_ok or not plan.camera_ok or reader.damage or stats.unreadable)
        ),
        "problems": problems,
        "notes": notes + log.notes,
        "events": dict(sorted(log.events.items())),
        "params": {k: replay.params[k] for k in PARAM_KEYS if k in replay.params},
        "rate": replay.rate if log.mode == "live" else None,
        "wall_s": round(log.wall_s, 3),
    }
    report.update(scores)
    if extra:
        report.update(extra)
    report["series"] = series
    return report


def summary_json(report: dict[str, Any]) -> dict[str, Any]:
    """The report without the per-output series (what ``--json`` prints)."""
    return {k: v for k, v in report.items() if k != "series"}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}{unit}" if abs(value) < 100 else f"{value:.0f}{unit}"
    return f"{value}{unit}"


def table_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) rows of the short table printed by ``slfm bag eval`` and the demo."""
    rows = [("estimators", report.get("estimators") or "n/a")]
    if report.get("fallback_reason"):
        rows.append(("learned model", "NOT USED (classical fallback)"))
    if report.get("ground_truth"):
        rows += [
            ("azimuth MAE (front-folded)", _fmt(report.get("azimuth_mae_deg"), " deg")),
            ("azimuth median (front-folded)", _fmt(report.get("azimuth_median_deg"), " deg")),
            ("azimuth MAE (raw)", _fmt(report.get("azimuth_mae_raw_deg"), " deg")),
            ("left/right accuracy", _fmt(report.get("lr_accuracy"))),
            (
                "azimuth MAE (unfolded, from front/back decision)",
                _fmt(report.get("azimuth_unfolded_mae_deg"), " deg"),
            ),
            (
                "front/back decided after the first turn",
                _fmt(report.get("front_back_decided_after_turn_s"), " s"),
            ),
            ("front/back ever decided wrongly", _fmt(report.get("front_back_ever_wrong"))),
            ("camera yaw MAE", _fmt(report.get("yaw_mae_deg"), " deg")),
            ("camera yaw median", _fmt(report.get("yaw_median_deg"), " deg")),
        ]
    rows += [
        ("coverage (windows with a direction)", _fmt(report.get("coverage"))),
        ("direction output rate", _fmt(report.get("output_rate_hz"), " Hz")),
        ("camera yaw output rate", _fmt(report.get("yaw_output_rate_hz"), " Hz")),
    ]
    if report.get("mode") == "live":
        rows += [
            ("latency p50", _fmt(report.get("latency_p50_ms"), " ms")),
            ("latency p99", _fmt(report.get("latency_p99_ms"), " ms")),
        ]
    if not report.get("ground_truth"):
        rows += [
            ("azimuth stability", _fmt(report.get("stability_deg"), " deg/window")),
            ("audio/camera consistency (front)", _fmt(report.get("consistency_front_deg"), " deg")),
            ("audio/camera consistency (back)", _fmt(report.get("consistency_back_deg"), " deg")),
            ("source side", _fmt(report.get("source_side"))),
            ("front/back decided at", _fmt(report.get("front_back_decided_at_s"), " s")),
            (
                "front probability (last window)",
                _fmt(report.get("primary_front_probability_final")),
            ),
        ]
    return rows


def side_by_side(columns: list[tuple[str, list[tuple[str, str]]]]) -> str:
    """Tables of several runs on the same bag as one, a column per run (rows of the first)."""
    names = [name for name, _ in columns]
    values = [dict(rows) for _, rows in columns]
    keys = [k for k, _ in columns[0][1]]
    for _, rows in columns[1:]:
        keys += [k for k, _ in rows if k not in keys]
    width = max(len(k) for k in keys)
    widths = [
        max(len(n), *(len(v.get(k, "")) for k in keys)) for n, v in zip(names, values, strict=True)
    ]
    header = (
        "  "
        + " " * width
        + "  "
        + "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    )
    lines = [header]
    for k in keys:
        cells = "  ".join(v.get(k, "-").ljust(w) for v, w in zip(values, widths, strict=True))
        lines.append(f"  {k.ljust(width)}  {cells}")
    return "\n".join(lines)


def format_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Bag evaluation: {Path(report['bag']).name} ({report['mode']})", ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in table_rows(report)]
    lines.append("")
    parts = report["parts"]
    lines.append(
        f"Audio part: {parts['audio'] or 'not evaluated'}; camera part: "
        f"{parts['camera'] or 'not evaluated'}; ground truth: "
        f"{'yes' if report['ground_truth'] else 'no'}."
    )
    if report["problems"]:
        lines += ["", "## Problems" + (" (partial report)" if report["partial"] else ""), ""]
        lines += [f"- {p}" for p in report["problems"]]
    if report["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    if report["events"]:
        lines += ["", "## Pipeline events", ""]
        lines += [f"- {code}: {n}" for code, n in report["events"].items()]
    lines += ["", "## Parameters", ""]
    lines += [f"- {k}: {v}" for k, v in report["params"].items()]
    return "\n".join(lines) + "\n"


def _plots(report: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["series"]
    written = []
    title = f"{Path(report['bag']).name} ({report['mode']}, {report['estimators']})"
    if s["direction_t_s"]:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        if "truth_curve_t_s" in s:
            t = np.asarray(s["truth_curve_t_s"], dtype=np.float64)
            truth = np.asarray(s["truth_curve_azimuth_deg"], dtype=np.float64)
            # Break the line where the angle wraps around +-180.
            truth[1:][np.abs(np.diff(truth)) > 180.0] = np.nan
            ax.plot(t, truth, "k-", lw=1.2, label="truth (window centre)")
            if (
                report.get("front_back_decided_at_s") is not None
                and "truth_curve_now_azimuth_deg" in s
            ):
                # Tracked directions describe their stamp, not their window's centre.
                now = np.asarray(s["truth_curve_now_azimuth_deg"], dtype=np.float64)
                now[1:][np.abs(np.diff(now)) > 180.0] = np.nan
                ax.plot(t, now, "-", color="0.55", lw=1.0, label="truth (now: tracked output)")
            if np.any(np.abs(truth) > 90.0):
                # A two-microphone receiver hears the front/back mirror of a source behind.
                mirror = np.where(truth >= 0, 180.0 - truth, -180.0 - truth)
                folded = np.where(np.abs(truth) > 90.0, mirror, truth)
                ax.plot(t, folded, "k--", lw=1.0, label="truth, front-folded")
        ax.plot(s["direction_t_s"], s["azimuth_deg"], ".", ms=4, label="sound direction")
        decided = report.get("front_back_decided_at_s")
        if decided is not None:
            ax.axvline(decided, color="tab:green", lw=1.0, ls=":", label="front/back decided")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("azimuth (deg, left +)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(folder / "azimuth.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    if s["yaw_t_s"]:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        if "truth_yaw_curve_t_s" in s:
            ax.plot(s["truth_yaw_curve_t_s"], s["truth_yaw_curve_deg"], "k-", lw=1.2, label="truth")
        ax.plot(s["yaw_t_s"], s["yaw_deg"], ".", ms=4, label="camera yaw")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("yaw since first output (deg)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(folder / "yaw.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    errors = []
    if "truth_azimuth_deg" in s:
        from slfm_ros.core.conventions import angular_error, fold_to_front, rad

        p = np.asarray(fold_to_front(rad(np.asarray(s["azimuth_deg"]))))
        t = np.asarray(fold_to_front(rad(np.asarray(s["truth_azimuth_deg"]))))
        errors.append(("azimuth error, front-folded (deg)", np.degrees(angular_error(p, t))))
    if "truth_yaw_deg" in s and len(s["yaw_deg"]) > 1:
        y = np.asarray(s["yaw_deg"][1:]) - np.asarray(s["truth_yaw_deg"][1:])
        errors.append(("camera yaw error (deg)", np.abs((y + 180.0) % 360.0 - 180.0)))
    if errors:
        fig, axes = plt.subplots(1, len(errors), figsize=(4 * len(errors), 3.0), squeeze=False)
        for ax, (label, values) in zip(axes[0], errors, strict=True):
            ax.hist(values, bins=30, color="tab:blue", alpha=0.8)
            ax.set_xlabel(label)
            ax.set_ylabel("outputs")
            ax.grid(alpha=0.3)
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        written.append(folder / "errors.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


def write_report(report: dict[str, Any], folder: str | Path) -> list[Path]:
    """Write report.json, summary.md and the plots into ``folder`` (created if needed)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, sort_keys=False) + "\n")
    (out / "summary.md").write_text(markdown(report))
    return [out / "report.json", out / "summary.md", *_plots(report, out)]

"""Write what :func:`catcodec.evaluation.run.evaluate` returns: results.json, results.md and results.png."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from .run import METRIC_LABELS, METRICS

#: Table columns after system and bitrates: (key, header, format, higher is better).
COLUMNS = (
    ("pesq_wb", "PESQ-WB", "{:.2f}", True),
    ("pesq_nb", "PESQ-NB", "{:.2f}", True),
    ("stoi", "STOI", "{:.3f}", True),
    ("si_sdr", "SI-SDR (dB)", "{:.1f}", True),
    ("mel", "mel", "{:.3f}", False),
    ("sim", "SIM", "{:.3f}", True),
)
NOT_AVAILABLE = "n/a"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def to_json_ready(obj: Any) -> Any:
    """A copy with NaN / infinities as None (JSON has no NaN) and numpy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {str(k): to_json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_ready(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _kbps(value: Any) -> str:
    if not _finite(value):
        return NOT_AVAILABLE
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _cell(summary: dict[str, Any] | None, fmt: str, num_items: int) -> str:
    if not summary or not _finite(summary.get("mean")):
        return NOT_AVAILABLE
    text = fmt.format(summary["mean"])
    if summary["valid"] < num_items:
        text += f" [{summary['valid']}/{num_items}]"
    return text


def _wer_cell(wer: dict[str, Any] | None, key: str = "wer") -> str:
    if not wer or not _finite(wer.get(key)):
        return NOT_AVAILABLE
    return f"{100 * wer[key]:.1f} %"


def markdown_table(results: dict[str, Any]) -> str:
    """The systems as a Markdown table (with the original audio's WER as the last row)."""
    header = ["system", "kbps", "real kbps", *(c[1] for c in COLUMNS), "WER", "CER"]
    rows = []
    for s in results["systems"]:
        n = len(s["items"])
        rows.append(
            [s["label"], _kbps(s["nominal_kbps"]), _kbps(s["real_kbps"])]
            + [_cell(s["metrics"].get(key), fmt, n) for key, _, fmt, _ in COLUMNS]
            + [_wer_cell(s.get("wer")), _wer_cell(s.get("wer"), "cer")]
        )
    o = results["original"]
    rows.append([o["label"], _kbps(o["nominal_kbps"]), _kbps(o["real_kbps"])] + ["-"] * len(COLUMNS) + [_wer_cell(o.get("wer")), _wer_cell(o.get("wer"), "cer")])
    right = set(range(1, len(header)))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def cell(text: str, i: int) -> str:
        return text.rjust(widths[i]) if i in right else text.ljust(widths[i])

    lines = ["| " + " | ".join(cell(h, i) for i, h in enumerate(header)) + " |"]
    lines.append("|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|")
    lines += ["| " + " | ".join(cell(t, i) for i, t in enumerate(r)) + " |" for r in rows]
    return "\n".join(lines)


LEGEND = (
    "Higher is better for PESQ (MOS-LQO, WB at 16 kHz, NB at 8 kHz), STOI, SI-SDR and SIM (speaker "
    "similarity, cosine of Resemblyzer embeddings); lower is better for mel (multi-scale log-mel L1 "
    "distance), WER (PocketSphinx, corpus-level: total errors / total reference words, on the items "
    "with a transcript) and CER (its character error rate on the same items, spaces included: less saturated "
    "than WER where few words are right). kbps: nominal bitrate; real kbps: from the token count (CAT: frames x quantizers x "
    "log2(codebook size) / seconds) or the encoded size (Opus: audio packets without the Ogg container; "
    "Codec 2: the bit file). `[v/n]`: mean over the v of n items where the metric could be computed."
)


def markdown_report(results: dict[str, Any], title: str = "catcodec evaluation") -> str:
    m = results["model"]
    lines = [f"# {title}", ""]
    if results.get("model_name"):
        lines.append(f"- model: `{results['model_name']}` ({m['sampling_rate']} Hz, {m['frame_rate']:g} frames/s, "
                     f"{m['num_quantizers']} x {m['codebook_size']} codes), weights: {m['weights_source']}")
    if m.get("untrained"):
        lines.append("- **the model's weights are UNTRAINED (random): its rows measure noise, not a codec**")
    if results.get("manifest"):
        lines.append(f"- manifest: `{results['manifest']}`")
    lines.append(f"- items: {results['num_items']} ({results['total_seconds']:.1f} s of audio)"
                 + (f", {len(results['skipped_items'])} unreadable item(s) skipped" if results.get("skipped_items") else ""))
    lines += ["", markdown_table(results), "", LEGEND, "", f"Alignment: {results['alignment']}", ""]
    if results.get("notes"):
        lines += ["Notes:", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: str | os.PathLike) -> None:
    """One panel per metric against the real bitrate (log x): the CAT curve labelled by quantizer count,
    each baseline as its own point; the WER panel also shows the original audio's WER as a dashed line."""
    from .metrics import require

    require("matplotlib", what="the results plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    keys = [k for k in METRICS] + ["wer"]
    fig = Figure(figsize=(18, 8.5))
    FigureCanvasAgg(fig)  # render with Agg, without pyplot or a global backend switch
    axes = fig.subplots(2, 4)
    flat = axes.reshape(-1)
    cat = [s for s in results["systems"] if s["kind"] == "cat"]
    bases = [s for s in results["systems"] if s["kind"] == "baseline"]
    markers = ["s", "^", "D", "v", "P", "X", "*", "h", "<", ">"]
    colours = ["tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray"]
    handles: dict[str, Any] = {}

    def value(system: dict[str, Any], key: str) -> float:
        if key == "wer":
            wer = system.get("wer")
            return 100 * wer["wer"] if wer and _finite(wer.get("wer")) else math.nan
        summary = system["metrics"].get(key)
        return summary["mean"] if summary and _finite(summary.get("mean")) else math.nan

    rates = [s["real_kbps"] for s in cat + bases if _finite(s["real_kbps"]) and s["real_kbps"] > 0]
    lo, hi = (min(rates), max(rates)) if rates else (0.1, 10.0)
    ticks = [t for t in (0.0625, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256) if lo / 1.5 <= t <= hi * 1.5]

    for ax, key in zip(flat, keys):
        arrow = "lower is better" if key in ("mel", "wer") else "higher is better"
        label = "WER (%)" if key == "wer" else METRIC_LABELS[key]
        ax.set_title(f"{label}  ({arrow})", fontsize=11)
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.5, hi * 2.2)  # room for the labels right of the points
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("real bitrate (kbps, log scale)")
        ax.grid(True, which="major", alpha=0.3)
        plotted = False
        points = [(s["real_kbps"], value(s, key), s["num_quantizers"]) for s in cat]
        points = [p for p in points if _finite(p[0]) and _finite(p[1])]
        if points:
            xs, ys, ns = zip(*points)
            (line,) = ax.plot(xs, ys, "-o", color="tab:blue", label="CAT", zorder=3)
            handles.setdefault("CAT (q = quantizers)", line)
            for x, y, n in points:
                ax.annotate(f"q{n}", (x, y), textcoords="offset points", xytext=(4, 5), fontsize=8, color="tab:blue")
            plotted = True
        for i, s in enumerate(bases):
            x, y = s["real_kbps"], value(s, key)
            if not (_finite(x) and _finite(y)):
                continue
            point = ax.scatter([x], [y], marker=markers[i % len(markers)], color=colours[i % len(colours)], s=60, zorder=4)
            handles.setdefault(s["label"], point)
            ax.annotate(s["label"], (x, y), textcoords="offset points", xytext=(6, -12 if i % 2 == 0 else 5), fontsize=8,
                        color=colours[i % len(colours)])
            plotted = True
        if key == "wer":
            o = value(results["original"], "wer")
            if _finite(o):
                ref_line = ax.axhline(o, color="black", linestyle="--", linewidth=1)
                ax.annotate(f"original {o:.0f} %", (0.02, o), xycoords=("axes fraction", "data"), textcoords="offset points",
                            xytext=(0, 4), fontsize=8)
                handles.setdefault("original audio (WER)", ref_line)
                plotted = True
        ax.margins(y=0.12)  # keep point labels inside the frame
        if not plotted:
            ax.text(0.5, 0.5, "not available", transform=ax.transAxes, ha="center", va="center", fontsize=12, color="gray")
            ax.set_xticks([])
            ax.set_yticks([])
    legend_ax = flat[len(keys)]
    legend_ax.axis("off")
    if handles:
        legend_ax.legend(list(handles.values()), list(handles.keys()), loc="center", fontsize=10, frameon=False)
    m = results["model"]
    title = f"catcodec eval: {results.get('model_name') or 'model'}, {results['num_items']} items ({results['total_seconds']:.0f} s)"
    if m.get("untrained"):
        title += "  [UNTRAINED weights: CAT rows are noise]"
    fig.suptitle(title, fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=100))


def write_report(results: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write results.json, results.md and results.png into `out_dir`; returns their paths."""
    out = Path(out_dir)
    paths = dict(json=out / "results.json", markdown=out / "results.md", plot=out / "results.png")
    text = json.dumps(to_json_ready(results), indent=2, allow_nan=False) + "\n"
    atomic_write(paths["json"], lambda f: f.write(text.encode()))
    atomic_write(paths["markdown"], lambda f: f.write(markdown_report(results).encode()))
    plot(results, paths["plot"])
    return paths


__all__ = ["LEGEND", "markdown_report", "markdown_table", "plot", "to_json_ready", "write_report"]

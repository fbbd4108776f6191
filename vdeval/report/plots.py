"""Report figures as PNG bytes (matplotlib, Agg). Same inputs give the same bytes: no
timestamps or version strings in the PNG metadata, fixed style and dpi."""
from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from vdeval.compare import Difference  # noqa: E402
from vdeval.report.tables import Merged, num  # noqa: E402
from vdeval.results import MetricRecord  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.container import ErrorbarContainer
    from matplotlib.lines import Line2D
    from matplotlib.typing import RcKeyType

DPI = 100
_STYLE: dict[RcKeyType, Any] = {
    "font.size": 8, "axes.titlesize": 9, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": DPI, "savefig.dpi": DPI,
    "path.simplify": False, "svg.hashsalt": "vdeval",
}
_TAB10 = plt.get_cmap("tab10")
assert isinstance(_TAB10, ListedColormap)  # a list of ten colours
_COLORS = [tuple(float(x) for x in c) for c in np.asarray(_TAB10.colors)]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    # PNG metadata would otherwise carry the matplotlib version ("Software")
    fig.savefig(buf, format="png", metadata={"Software": None})  # tight_layout done by callers
    plt.close(fig)
    return buf.getvalue()


def _grid(n: int, ncols: int = 3, w: float = 3.4, h: float = 2.5):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat:  # small panels: few ticks so labels never run together
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


# value units of the shipped metrics (by metric name); a metric may also declare meta["unit"]
UNITS = {
    "warping_error": "mean squared error, RGB in [0, 1]",
    "frame_difference": "mean |Δ| per pixel, 0–255",
    "frozen_motion": "fraction of clips frozen",
    "identity_drift": "cosine similarity",
    "reference_fidelity": "cosine similarity",
    "clip_score": "cosine similarity",
    "video_text_alignment": "cosine similarity",
    "prompt_drift": "cosine drop over the clip",
    "scene_cuts": "cuts per clip",
    "motion_jitter": "px at 256 px short side",
    "motion_smoothness": "(255 − interpolation error) / 255",
    "fvd": "Fréchet distance",
    "kvd": "MMD² (unbiased)",
}
# per-frame curves: what one point is and its unit, where it differs from the value
CURVE_UNITS = {
    "frozen_motion": ("frame pair", "motion score (px)"),
    "scene_cuts": ("frame pair", "1 − cosine to next frame"),
    "warping_error": ("frame pair", "mean squared error, RGB in [0, 1]"),
    "frame_difference": ("frame pair", "mean |Δ| per pixel, 0–255"),
    "motion_jitter": ("frame pair", "px at 256 px short side"),
    "motion_smoothness": ("odd frame", "interpolation error, mean |Δ| 0–255"),
    "identity_drift": ("frame", "cosine to first frame"),
    "reference_fidelity": ("frame", "cosine to reference"),
    "prompt_drift": ("frame", "cosine to prompt"),
}


# a curve's own better direction where it differs from its metric's value: motion_smoothness's
# curve is the interpolation error (lower is better) of a value where higher is better;
# frozen_motion's is the amount of motion (no better direction); prompt_drift's the cosine itself
CURVE_ARROWS = {"motion_smoothness": "↓", "frozen_motion": "", "prompt_drift": "↑"}


def unit(metric: str, meta: MetricRecord | None) -> str:
    """The unit of a metric's values, by its registered name (a suite label may differ)."""
    return UNITS.get(meta.name if meta is not None else metric) or "score (no unit)"


def _short(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _title(ax, metric: str, meta: MetricRecord, backbone: str | None = None, arrow: str | None = None):
    """The panel's metric, the better direction of what it plots (the value's unless `arrow`), backbone."""
    arrow = ("↑" if meta.higher_is_better else "↓") if arrow is None else arrow
    bb = backbone or meta.backbone_label or meta.backbone or ""
    ax.set_title(f"{metric}{' ' + arrow if arrow else ''}" + (f"  [{bb}]" if bb else ""), loc="left")


def _flat_axis(ax, values, axis: str = "y") -> None:
    """When every value is the same, centre a range that shows that value instead of matplotlib's
    ±0.05 around it (meaningless for a rate of 0 or a distance of 1e-8), and say so."""
    v = np.asarray([x for x in values if math.isfinite(x)], float)
    if v.size == 0 or np.ptp(v) > 0:
        return
    c = float(v[0])
    pad = abs(c) * 0.1 if c != 0 else 1.0
    lo, hi = (0.0, 1.0) if c == 0 else (c - pad, c + pad)
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lo, hi)
    ax.text(0.98, 0.95, f"all values {c:.4g}", transform=ax.transAxes, ha="right", va="top", fontsize=7,
            color="#57606a")


def _legend_below(fig, handles, labels) -> None:
    """One legend for the figure, below the panels: never over the data."""
    if not handles:
        return
    ncol = min(len(labels), 4)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, fontsize=7,
               bbox_to_anchor=(0.5, 0.0))
    rows = math.ceil(len(labels) / ncol)
    fig.tight_layout(rect=(0, 0.04 + 0.045 * rows * 3 / fig.get_size_inches()[1], 1, 1))


def summary_plot(merged: Merged) -> bytes | None:
    """Each metric: mean and 95% CI per generator."""
    metrics = [m for m in merged.metrics if (merged.summary["metric"] == m).any()]
    if not metrics:
        return None
    gens = list(merged.generators)
    with plt.rc_context(_STYLE):
        fig, axes = _grid(len(metrics), h=0.9 + 0.32 * max(len(gens), 2))
        for ax, m in zip(axes, metrics):
            sub = merged.summary[merged.summary["metric"] == m].set_index("generator")
            bbs = sorted({str(b) for b in sub["backbone"] if b})
            _title(ax, m, merged.metrics[m], ", ".join(bbs))
            xs = []
            for i, g in enumerate(gens):
                if g not in sub.index:
                    continue
                r = sub.loc[g]
                v, lo, hi = num(r["value"]), num(r["ci_low"]), num(r["ci_high"])
                if not math.isfinite(v):
                    continue
                xs += [v, lo, hi]
                y = len(gens) - 1 - i
                if math.isfinite(lo) and math.isfinite(hi):
                    ax.errorbar([v], [y], xerr=[[max(v - lo, 0)], [max(hi - v, 0)]], fmt="o",
                                color=_COLORS[i % 10], capsize=3, ms=4)
                else:  # no CI: hollow marker so it is not read as exact
                    ax.plot([v], [y], "o", mfc="white", color=_COLORS[i % 10], ms=4)
            _flat_axis(ax, xs, "x")
            ax.set_xlabel(unit(m, merged.metrics[m]))
            ax.set_yticks(range(len(gens)))
            ax.set_yticklabels([_short(g) for g in reversed(gens)])
            ax.set_ylim(-0.6, len(gens) - 0.4)
        fig.tight_layout()
        return _png(fig)


def differences_plot(diffs: list[Difference], merged: Merged | None = None) -> bytes | None:
    """Each metric: difference to the baseline with its 95% CI; not significant drawn grey and hollow."""
    metrics = list(dict.fromkeys(d.metric for d in diffs if math.isfinite(d.diff)))
    if not metrics:
        return None
    with plt.rc_context(_STYLE):
        gens = list(dict.fromkeys(d.generator for d in diffs))
        fig, axes = _grid(len(metrics), h=0.9 + 0.32 * max(len(gens), 2))
        for ax, m in zip(axes, metrics):
            ds = [d for d in diffs if d.metric == m and math.isfinite(d.diff)]
            arrow = "↑" if ds[0].higher_is_better else "↓"
            ax.set_title(f"{m} {arrow}: minus {_short(ds[0].baseline, 14)}", loc="left")
            ax.axvline(0, color="black", lw=0.8)
            for d in ds:
                y = len(gens) - 1 - gens.index(d.generator)
                color = {"better": "tab:green", "worse": "tab:red"}.get(d.verdict, "grey")
                face = color if d.verdict in ("better", "worse") else "white"
                if math.isfinite(d.ci_low) and math.isfinite(d.ci_high):
                    ax.errorbar([d.diff], [y], xerr=[[max(d.diff - d.ci_low, 0)], [max(d.ci_high - d.diff, 0)]],
                                fmt="o", color=color, mfc=face, capsize=3, ms=5)
                else:
                    ax.plot([d.diff], [y], "o", color=color, mfc=face, ms=5)
            meta = merged.metrics.get(m) if merged is not None else None
            ax.set_xlabel(f"difference ({unit(m, meta)})")
            ax.set_yticks(range(len(gens)))
            ax.set_yticklabels([_short(g) for g in reversed(gens)])
            ax.set_ylim(-0.6, len(gens) - 0.4)
        fig.tight_layout()
        return _png(fig)


def steps_plot(merged: Merged, series: dict) -> bytes | None:
    """Each metric against training step, one line per training run, 95% CI as error bars and band."""
    if not series:
        return None
    lines = sorted({str(x) for df in series.values() for x in df["line"]})
    handles: dict[str, ErrorbarContainer] = {}
    with plt.rc_context(_STYLE):
        fig, axes = _grid(len(series), h=2.7)
        for ax, (m, df) in zip(axes, series.items()):
            _title(ax, m, merged.metrics[m])
            ys = []
            for line, sub in df.groupby("line", sort=True):
                x = sub["step"].to_numpy(float)
                y = sub["value"].to_numpy(float)
                lo = sub["ci_low"].to_numpy(float)
                hi = sub["ci_high"].to_numpy(float)
                c = _COLORS[lines.index(str(line)) % 10]
                ok = np.isfinite(lo) & np.isfinite(hi)
                err = np.vstack([np.where(ok, np.maximum(y - lo, 0), 0), np.where(ok, np.maximum(hi - y, 0), 0)])
                h = ax.errorbar(x, y, yerr=err, fmt="o-", color=c, ms=3, capsize=3, lw=1.2)
                if ok.sum() >= 2:
                    ax.fill_between(x[ok], lo[ok], hi[ok], color=c, alpha=0.15, lw=0)
                handles.setdefault(str(line), h)
                ys += list(y) + list(lo[ok]) + list(hi[ok])
            steps = sorted(set(df["step"].astype(float)))
            if len(steps) <= 8:
                ax.set_xticks(steps)
                ax.set_xticklabels([f"{s:g}" for s in steps])
            _flat_axis(ax, ys)
            ax.set_xlabel("training step")
            ax.set_ylabel(_short(unit(m, merged.metrics[m]), 34))
        fig.tight_layout()
        if len(handles) > 1:
            _legend_below(fig, list(handles.values()), [_short(k, 30) for k in handles])
        return _png(fig)


def curve_axes(metric: str, meta: MetricRecord) -> tuple[str, str, str]:
    """(title arrow, what one point is, y unit) of a metric's per-frame curve panel."""
    name = meta.name or metric
    arrow = CURVE_ARROWS.get(name, "↑" if meta.higher_is_better else "↓")
    xname, yunit = CURVE_UNITS.get(name, ("frame", unit(metric, meta)))
    return arrow, xname, yunit


def curves_plot(merged: Merged, curves: dict) -> bytes | None:
    """Each metric's per-frame curve averaged over clips, band = 95% bootstrap CI."""
    if not curves:
        return None
    gens = list(merged.generators)
    handles: dict[str, Line2D] = {}
    with plt.rc_context(_STYLE):
        fig, axes = _grid(len(curves), h=2.7)
        for ax, (m, per_g) in zip(axes, curves.items()):
            arrow, xname, yunit = curve_axes(m, merged.metrics[m])
            _title(ax, m, merged.metrics[m], arrow=arrow)
            ys = []
            # every generator's curves share one axis: in seconds when the clips' frame rates are known
            seconds = any(v[5] for v in per_g.values())
            for g, (mean, lo, hi, _count, x, _timed) in per_g.items():
                c = _COLORS[gens.index(g) % 10]
                (h,) = ax.plot(x, mean, color=c, lw=1.2)
                ax.fill_between(x, lo, hi, color=c, alpha=0.2, lw=0)
                handles.setdefault(g, h)
                ys += list(mean) + list(lo) + list(hi)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=not seconds))
            _flat_axis(ax, ys)
            ax.set_xlabel(f"time in the clip (s), per {xname}" if seconds else f"{xname} index")
            ax.set_ylabel(_short(yunit, 34))
        fig.tight_layout()
        _legend_below(fig, list(handles.values()), [_short(g, 30) for g in handles])
        return _png(fig)

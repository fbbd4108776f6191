"""Report figures as PNG bytes (matplotlib, Agg). Same inputs give the same bytes: no
timestamps or version strings in the PNG metadata, fixed style and dpi."""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from vdeval.report.compare import Difference  # noqa: E402
from vdeval.report.tables import Merged, num  # noqa: E402

DPI = 100
_STYLE = {
    "font.size": 8, "axes.titlesize": 9, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": DPI, "savefig.dpi": DPI,
    "path.simplify": False, "svg.hashsalt": "vdeval",
}
_COLORS = plt.get_cmap("tab10").colors


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


def _short(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _title(ax, metric: str, meta: dict, backbone: str | None = None):
    arrow = "↑" if meta.get("higher_is_better", True) else "↓"
    bb = backbone or meta.get("backbone_label") or meta.get("backbone") or ""
    ax.set_title(f"{metric} {arrow}" + (f"  [{bb}]" if bb else ""), loc="left")


def summary_plot(merged: Merged) -> bytes | None:
    """Each metric: mean and 95% CI per generator."""
    metrics = [m for m in merged.metrics if (merged.summary["metric"] == m).any()]
    if not metrics:
        return None
    gens = list(merged.generators)
    with plt.rc_context(_STYLE):
        fig, axes = _grid(len(metrics), h=0.6 + 0.32 * max(len(gens), 2))
        for ax, m in zip(axes, metrics):
            sub = merged.summary[merged.summary["metric"] == m].set_index("generator")
            bbs = sorted({str(b) for b in sub["backbone"] if b})
            _title(ax, m, merged.metrics[m], ", ".join(bbs))
            for i, g in enumerate(gens):
                if g not in sub.index:
                    continue
                r = sub.loc[g]
                v, lo, hi = num(r["value"]), num(r["ci_low"]), num(r["ci_high"])
                if not math.isfinite(v):
                    continue
                y = len(gens) - 1 - i
                if math.isfinite(lo) and math.isfinite(hi):
                    ax.errorbar([v], [y], xerr=[[max(v - lo, 0)], [max(hi - v, 0)]], fmt="o",
                                color=_COLORS[i % 10], capsize=3, ms=4)
                else:  # no CI: hollow marker so it is not read as exact
                    ax.plot([v], [y], "o", mfc="white", color=_COLORS[i % 10], ms=4)
            ax.set_yticks(range(len(gens)))
            ax.set_yticklabels([_short(g) for g in reversed(gens)])
            ax.set_ylim(-0.6, len(gens) - 0.4)
        fig.tight_layout()
        return _png(fig)


def differences_plot(diffs: list[Difference]) -> bytes | None:
    """Each metric: difference to the baseline with its 95% CI; not significant drawn grey and hollow."""
    metrics = list(dict.fromkeys(d.metric for d in diffs if math.isfinite(d.diff)))
    if not metrics:
        return None
    with plt.rc_context(_STYLE):
        gens = list(dict.fromkeys(d.generator for d in diffs))
        fig, axes = _grid(len(metrics), h=0.6 + 0.32 * max(len(gens), 2))
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
            ax.set_yticks(range(len(gens)))
            ax.set_yticklabels([_short(g) for g in reversed(gens)])
            ax.set_ylim(-0.6, len(gens) - 0.4)
        fig.tight_layout()
        return _png(fig)


def steps_plot(merged: Merged, series: dict) -> bytes | None:
    """Each metric against training step, one line per run, 95% CI band."""
    if not series:
        return None
    with plt.rc_context(_STYLE):
        fig, axes = _grid(len(series))
        for ax, (m, df) in zip(axes, series.items()):
            _title(ax, m, merged.metrics[m])
            for i, (run, sub) in enumerate(df.groupby("run", sort=True)):
                x = sub["step"].to_numpy(float)
                y = sub["value"].to_numpy(float)
                lo = sub["ci_low"].to_numpy(float)
                hi = sub["ci_high"].to_numpy(float)
                c = _COLORS[i % 10]
                ax.plot(x, y, "o-", color=c, ms=3, label=run)
                ok = np.isfinite(lo) & np.isfinite(hi)
                if ok.sum() >= 2:
                    ax.fill_between(x[ok], lo[ok], hi[ok], color=c, alpha=0.2, lw=0)
            ax.set_xlabel("training step")
            if df["run"].nunique() > 1:
                ax.legend(fontsize=7)
        fig.tight_layout()
        return _png(fig)


def curves_plot(merged: Merged, curves: dict) -> bytes | None:
    """Each metric's per-frame curve averaged over clips, band = 95% bootstrap CI."""
    if not curves:
        return None
    gens = list(merged.generators)
    with plt.rc_context(_STYLE):
        fig, axes = _grid(len(curves))
        for ax, (m, per_g) in zip(axes, curves.items()):
            _title(ax, m, merged.metrics[m])
            for g, (mean, lo, hi, _count) in per_g.items():
                c = _COLORS[gens.index(g) % 10]
                x = np.arange(mean.size)
                ax.plot(x, mean, color=c, lw=1.2, label=_short(g))
                ax.fill_between(x, lo, hi, color=c, alpha=0.2, lw=0)
            ax.set_xlabel("frame (or frame pair)")
            ax.legend(fontsize=7)
        fig.tight_layout()
        return _png(fig)

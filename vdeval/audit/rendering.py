"""The audit's outputs: the wide AUROC / Spearman table, its Markdown, the heatmap, and the files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vdeval.audit.core import MODERATE, AuditResult


def wide_table(result: AuditResult, severity: float | None = None):
    """score x corruption: 'AUROC / rho' at `severity` (default: the moderate one if audited, else the middle)."""
    t = result.table
    if severity is None:
        severity = MODERATE if any(np.isclose(result.severities, MODERATE)) else result.severities[len(result.severities) // 2]
    sub = t[np.isclose(t["severity"], severity)].copy()
    sub["row"] = sub["score"] + " [" + sub["backbone"] + "]"
    sub["cell"] = [(f"{a:.2f}{'*' if own else ''} / " + (f"{r:+.2f}" if np.isfinite(r) else "n/a")) if np.isfinite(a) else "n/a"
                   for a, r, own in zip(sub["auroc"], sub["spearman"], sub["own_failure"])]
    w = sub.pivot(index="row", columns="corruption", values="cell")
    return w.loc[list(dict.fromkeys(sub["row"])), list(dict.fromkeys(sub["corruption"]))], severity


def to_markdown(result: AuditResult) -> str:
    w, severity = wide_table(result)
    lines = [
        f"# Metric audit: {result.n_clips} world clips ({result.spec.get('height')}x{result.spec.get('width')}, "
        f"{result.spec.get('frames')} frames), severities {', '.join(f'{s:g}' for s in result.severities)}",
        "",
        f"Cells: AUROC of clean vs corrupted at severity {severity:g} / Spearman rho of badness with severity "
        "(0 = clean). * marks the failure the metric is built to catch.",
        "",
        "| score | " + " | ".join(w.columns) + " |",
        "|---|" + "---|" * len(w.columns),
    ]
    for row, vals in w.iterrows():
        lines.append(f"| {row} | " + " | ".join(str(v) for v in vals) + " |")
    own = result.own_failure(severity)
    if len(own):
        lines += ["", "Own failure, AUROC by severity (a 0/1 score also gives its accuracy: clean clips "
                  "called good, corrupted bad):", ""]
        lines += ["| score | corruption | " + " | ".join(f"{s:g}" for s in result.severities) + " | rho |",
                  "|---|---|" + "---|" * (len(result.severities) + 1)]
        t = result.table
        for (score, backbone, c), g in t[t["own_failure"]].groupby(["score", "backbone", "corruption"], sort=False):
            vals = [_own_cell(g[np.isclose(g["severity"], s)].iloc[0]) for s in result.severities]
            rho = g["spearman"].iloc[0]
            lines.append(f"| {score} [{backbone}] | {c} | " + " | ".join(vals) + " | " + (f"{rho:+.2f}" if np.isfinite(rho) else "n/a") + " |")
    if result.skipped:
        lines += ["", "Skipped:", ""] + [f"- {s}" for s in result.skipped]
    if result.failures:
        lines += ["", "Clips left out (the audit went on without them):", ""] + [f"- {f}" for f in result.failures]
    lines += ["", "Features computed (clips): " + ", ".join(f"{k} {v}" for k, v in result.computed.items()),
              "", f"{result.seconds:.1f} s"]
    return "\n".join(lines) + "\n"


def _own_cell(row) -> str:
    acc = row.get("accuracy", float("nan"))
    return f"{row['auroc']:.2f}" + (f" (acc {acc:.2f})" if np.isfinite(acc) else "")


def plot_heatmap(result: AuditResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result.table
    w, severity = wide_table(result)
    sub = t[np.isclose(t["severity"], severity)].copy()
    sub["row"] = sub["score"] + " [" + sub["backbone"] + "]"
    a = sub.pivot(index="row", columns="corruption", values="auroc").loc[w.index, w.columns]
    own = sub.pivot(index="row", columns="corruption", values="own_failure").loc[w.index, w.columns]
    fig, ax = plt.subplots(figsize=(1.0 * len(w.columns) + 3.5, 0.45 * len(w.index) + 1.8))
    im = ax.imshow(a.to_numpy(float), cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(w.columns)), w.columns, rotation=40, ha="right")
    ax.set_yticks(range(len(w.index)), w.index)
    for r in range(a.shape[0]):
        for c in range(a.shape[1]):
            v = a.iat[r, c]
            ax.text(c, r, "-" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=8,
                    fontweight="bold" if own.iat[r, c] else "normal")
            if own.iat[r, c]:
                ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=2, ec="black"))
    fig.colorbar(im, ax=ax, label="AUROC (clean vs corrupted)")
    ax.set_title(f"Metric audit: AUROC at severity {severity:g} ({result.n_clips} clips); boxed = own failure")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_audit(result: AuditResult, out: Path) -> dict[str, Path]:
    from vdeval.store import atomic_write_bytes, csv_safe_frame

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "audit.csv", "md": out / "audit.md", "png": out / "audit.png", "scores": out / "scores.csv"}
    atomic_write_bytes(paths["csv"], csv_safe_frame(result.table).to_csv(index=False, float_format="%.6g").encode())
    atomic_write_bytes(paths["scores"], csv_safe_frame(result.scores).to_csv(index=False, float_format="%.6g").encode())
    atomic_write_bytes(paths["md"], to_markdown(result).encode())
    plot_heatmap(result, paths["png"])
    return paths

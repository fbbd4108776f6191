"""summary.md: GitHub-flavoured Markdown for a pull-request comment or a CI step summary."""
from __future__ import annotations

from vdeval.compare import ALPHA, PAIRED_TEST, SET_TEST, Difference
from vdeval.report import rules
from vdeval.report.compare import Best, headline, relative_text
from vdeval.report.tables import Merged, fmt, fmt_ci

_MD_SPECIAL = "\\`*_[]|<>#!"


def md(x) -> str:
    """Text for a table cell: Markdown and HTML characters escaped, one line."""
    s = "" if x is None else str(x)
    s = s.replace("&", "&amp;")
    out = []
    for ch in s:
        if ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch in _MD_SPECIAL:
            out.append("\\" + ch)
        elif ch in "\r\n\t":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


_VERDICT = {"better": "✅ better", "worse": "❌ worse", "n.s.": "not significant", "—": "not judged"}


def render(merged: Merged, *, title: str, diffs: list[Difference], baseline: str | None, failures_df,
           best: dict[str, Best] | None = None, baseline_why: str = "") -> str:
    gens = list(merged.generators)
    n_failed = sum(1 for c in merged.clips if c.error)
    lines = [f"## {md(title)}", "",
             f"Runs: {md(', '.join(r.name for r in merged.runs))} · {len(merged.clips)} clips, {n_failed} failed", ""]

    def head(g: str) -> str:
        label = rules.role_label(merged, g)
        return md(g) + (f" <sub>{md(label)}</sub>" if label else "")

    lines += ["### Summary", "",
              "| metric | better | " + " | ".join(head(g) for g in gens) + " |",
              "|---|---|" + "---|" * len(gens)]
    rows = {(r["generator"], r["metric"]): r for r in merged.summary.to_dict("records")}
    frozen = rules.frozen_fractions(merged)
    for m, meta in merged.metrics.items():
        cells = []
        for g in gens:
            r = rows.get((g, m))
            if r is None:
                cells.append("—")
                continue
            n_part = f"n={int(r['n'])}" + (f", {int(r['n_failed'])} failed" if r.get("n_failed") else "")
            b = (best or {}).get(m)
            mark = "" if b is None or b.generator != g else (f"{rules.STAR} " if b.significant else f"{rules.HOLLOW} ")
            flag = rules.frozen_flag(merged, g, m, frozen)
            cells.append(f"{mark}**{md(fmt(r['value']))}**{' ' + md(flag) if flag else ''} "
                         f"{md(fmt_ci(r['ci_low'], r['ci_high']))} "
                         f"<sub>{md(n_part)} · {md(r['backbone'] or 'no backbone')}</sub>"
                         + (f" ({md(r['error'])})" if r.get("error") else ""))
        arrow = "↑ higher" if meta.higher_is_better else "↓ lower"
        lines.append(f"| {md(m)} | {arrow} | " + " | ".join(cells) + " |")
    lines += ["", " ".join(["Mean (or set-level value) with its 95% bootstrap CI, sample count and backbone."]
                           + rules.legend(merged)), ""]

    if diffs:
        lines += [f"### Compared with baseline {md(baseline)}", ""]
        if baseline_why:
            lines += [f"Baseline: {md(baseline_why)}.", ""]
        for g, groups in headline(diffs):
            bits = [f"{label} on {md(', '.join(groups[key]))}" for key, label in
                    (("better", "✅ better"), ("worse", "❌ worse"), ("n.s.", "not significantly different"),
                     ("—", "not judged")) if groups[key]]
            lines.append(f"- **{md(g)}**: " + "; ".join(bits))
        lines += ["",
                  "| metric | generator | n | difference [95% CI] | relative | p | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for d in diffs:
            p = "—" if d.p_value is None else f"{d.p_value:.3g}"
            lines.append(f"| {md(d.metric)} | {md(d.generator)} | {d.n} | {md(fmt(d.diff))} "
                         f"{md(fmt_ci(d.ci_low, d.ci_high))} | {md(relative_text(d, merged))} "
                         f"| {md(p)} | {_VERDICT[d.verdict]} |")
        lines += ["", f"Per-clip metrics: paired by prompt and seed, {PAIRED_TEST} test (significant at p < {ALPHA}, each comparison on its own); "
                      f"set-level metrics: {SET_TEST}.", ""]

    if not failures_df.empty:
        lines += [f"### Failures ({len(failures_df)})", ""]
        for r in failures_df.head(20).itertuples():
            lines.append(f"- {md(r.generator)} {md(r.clip_id)} ({md(r.stage) or 'clip'}): {md(r.error)}")
        if len(failures_df) > 20:
            lines.append(f"- … and {len(failures_df) - 20} more (see index.html)")
        lines.append("")
    return "\n".join(lines) + "\n"

"""index.html: one self-contained page (inline CSS, images as data URIs, no script).

Every string from results (prompts, names, paths, errors) goes through esc(). A Content
Security Policy forbids scripts and any load that is not a data: URI, so even a report built
from hostile results cannot run code or call out when opened.

Sortable tables therefore use no script: each sort order is rendered once, hidden, and a column
header links to its copy (`#id-cN`); CSS `:target` shows that copy. Works with JavaScript off.
"""
from __future__ import annotations

import base64
import html as _html
import json
import math

from vdeval.compare import ALPHA, PAIRED_TEST, SET_TEST, Difference
from vdeval.report import rules
from vdeval.report.compare import Best, headline, relative_text
from vdeval.report.previews import Preview
from vdeval.report.tables import Merged, direction, fmt, fmt_ci

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#1f2328}
h1{font-size:22px;margin:4px 0}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{max-width:100%;overflow-x:auto}
.small{font-size:11px;color:#57606a}.v{font-weight:600}.nb{white-space:nowrap}
.better{color:#1a7f37;font-weight:600}.worse{color:#cf222e;font-weight:600}.ns{color:#8c959f}
td.best-sig{background:#dafbe1}td.best-ns{background:#f6f8fa}
.mark{font-weight:700;color:#1a7f37;white-space:nowrap}.mark-ns{color:#57606a;white-space:nowrap}
.role{font-weight:normal;font-size:11px;color:#57606a;font-style:italic}
.frozen{font-size:11px;color:#9a6700;background:#fff8c5;border-radius:3px;padding:0 3px;white-space:nowrap}
.meta{color:#57606a;font-size:12px}nav a{margin-right:12px}
img.plot{max-width:100%;border:1px solid #eaeef2}
.strip{display:flex;flex-wrap:wrap;gap:10px;margin:4px 0 10px}.pair{display:flex;flex-wrap:wrap;gap:10px 40px}
.gen{margin:6px 0 10px}.gen>.small{font-weight:600}
figure{margin:0;width:150px;overflow:hidden}
figure img{image-rendering:pixelated;display:block;border:1px solid #d0d7de;max-width:100%;height:auto;box-sizing:border-box}
figcaption{font-size:11px;color:#57606a;overflow-wrap:anywhere}
table.grid td{vertical-align:top}table.grid th.prompt{max-width:220px;font-weight:normal;overflow-wrap:anywhere}
.missing{width:96px;height:96px;background:#f6f8fa;border:1px dashed #d0d7de;font-size:10px;color:#8c959f;
display:flex;align-items:center;justify-content:center;text-align:center}
details{margin:4px 0}summary{cursor:pointer;font-weight:600}
pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:11px}
.sortable>.alt{display:none}.sortable>.alt:target{display:block}.sortable:has(>.alt:target)>.default{display:none}
th a.sort{color:inherit;text-decoration:none}th a.sort:hover{text-decoration:underline}.active{color:#0969da}
"""


def esc(x) -> str:
    return _html.escape("" if x is None else str(x), quote=True)


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<p><img class="plot" alt="{esc(alt)}" src="{data_uri("image/png", png)}"></p>'


def _name(merged: Merged, g: str) -> str:
    """A generator's name with its role (reference, control: ...) under it (rules.py rule 1)."""
    label = rules.role_label(merged, g)
    return esc(g) + (f"<br><span class='role'>{esc(label)}</span>" if label else "")


def _frozen(merged: Merged, g: str, m: str, frozen: dict) -> str:
    flag = rules.frozen_flag(merged, g, m, frozen)
    return (f' <span class="frozen" title="{esc(rules.LEGEND_FROZEN)}">{esc(flag)}</span>') if flag else ""


def _summary_table(merged: Merged, best: dict[str, Best]) -> str:
    gens = list(merged.generators)
    rows = {(r["generator"], r["metric"]): r for r in merged.summary.to_dict("records")}
    frozen = rules.frozen_fractions(merged)
    head = "".join(f"<th>{_name(merged, g)}</th>" for g in gens)
    out = [f"<div class='scroll'><table class='summary'><thead><tr><th>metric</th><th>better</th>{head}</tr>"
           "</thead><tbody>"]
    for m, meta in merged.metrics.items():
        hib = meta.higher_is_better
        b = best.get(m)
        cells = []
        for g in gens:
            r = rows.get((g, m))
            if r is None:
                cells.append('<td class="num ns">—</td>')
                continue
            n_part = f"n={int(r['n'])}"
            if r.get("n_failed"):
                n_part += f", {int(r['n_failed'])} failed"
            if r.get("n_real") not in (None, "") and not (isinstance(r["n_real"], float) and math.isnan(r["n_real"])):
                n_part += f", real n={int(r['n_real'])}"
            why = f'<br><span class="small worse">{esc(r["error"])}</span>' if r.get("error") else ""
            cls, mark = "num", ""
            if b is not None and b.generator == g:
                if b.significant:
                    cls, mark = "num best-sig", '<span class="mark" title="best, significantly">★ best</span> '
                else:
                    cls = "num best-ns"
                    mark = (f'<span class="mark-ns" title="best value, not significantly better than '
                            f'{esc(", ".join(b.ties))}">☆ best (n.s.)</span> ')
            cells.append(
                f'<td class="{cls}">{mark}<span class="v nb">{esc(fmt(r["value"]))}</span>{_frozen(merged, g, m, frozen)} '
                f'<span class="small nb">{esc(fmt_ci(r["ci_low"], r["ci_high"]))}</span><br>'
                f'<span class="small">{esc(n_part)} · {esc(r["backbone"] or "no backbone")}</span>{why}</td>')
        out.append(f'<tr><th>{esc(m)}<br><span class="small">{esc(meta.level)}-level'
                   f'{" · v" + esc(meta.version) if meta.version else ""}</span></th>'
                   f'<td class="nb">{esc(direction(hib))}</td>{"".join(cells)}</tr>')
    out.append("</tbody></table></div>")
    out.append('<p class="small">Each cell: mean (per-clip metrics) or value (set-level), its 95% bootstrap '
               'confidence interval, the number of clips it rests on and the backbone that produced it. '
               + " ".join(esc(x) for x in rules.legend(merged))
               + f' Significance: {esc(PAIRED_TEST)} on clips paired by prompt and seed, p &lt; {ALPHA}; set-level '
               'metrics: the intervals.</p>')
    return "\n".join(out)


def sortable_table(tid: str, columns: list[str], rows: list[list[str]], keys: list[list], better_high: list,
                   caption: str = "") -> str:
    """A table sortable by clicking a column header, without script (see the module docstring).

    columns: header labels; rows: cell HTML per row; keys: per row the sort key per column (number
    or text, None = missing); better_high: per column True (sort descending), False (ascending),
    or None (not sortable). Missing keys sort last."""
    def table(order: list[int], active: int | None) -> str:
        head = []
        for j, c in enumerate(columns):
            if better_high[j] is None:
                head.append(f"<th>{esc(c)}</th>")
                continue
            arrow = " ▼" if active == j else ""
            cls = " active" if active == j else ""
            head.append(f'<th><a class="sort{cls}" href="#{tid}-c{j}" title="sort by {esc(c)}">{esc(c)}{arrow}</a></th>')
        body = "".join("<tr>" + "".join(rows[i]) + "</tr>" for i in order)
        return f"<div class='scroll'><table><thead><tr>{''.join(head)}</tr></thead><tbody>{body}</tbody></table></div>"

    views = [f"<div class='view default'>{table(list(range(len(rows))), None)}</div>"]
    for j, hb in enumerate(better_high):
        if hb is None:
            continue
        def key(i, j=j, hb=hb):
            k = keys[i][j]
            missing = k is None or (isinstance(k, float) and not math.isfinite(k))
            if missing:
                return (1, 0, "")
            if isinstance(k, (int, float)):
                return (0, -k if hb else k, "")
            return (0, 0, str(k))
        order = sorted(range(len(rows)), key=lambda i: (key(i), i))
        views.append(f"<div class='view alt' id='{tid}-c{j}'>{table(order, j)}</div>")
    note = (f"<p class='small'>{caption} Click a column header to sort (best first); "
            f"<a href='#{tid}'>original order</a>.</p>")
    return f"<div class='sortable' id='{tid}'>{''.join(views)}</div>{note}"


def _leaderboard(merged: Merged, best: dict[str, Best]) -> str:
    """Generators as rows, metrics as columns, sortable by any metric: a leaderboard view."""
    rows_by = {(r["generator"], r["metric"]): r for r in merged.summary.to_dict("records")}
    frozen = rules.frozen_fractions(merged)
    metrics = list(merged.metrics)
    cols = ["generator", "step"] + metrics
    hib = [False, False] + [merged.metrics[m].higher_is_better for m in metrics]
    rows, keys = [], []
    for g, gen in merged.generators.items():
        step = gen.step
        cells = [f"<th>{_name(merged, g)}</th>", f"<td class='num'>{'—' if step is None else esc(format(step, 'g'))}</td>"]
        k = [g, step]
        for m in metrics:
            v = (rows_by.get((g, m)) or {}).get("value")
            b = best.get(m)
            mark = ""
            if b is not None and b.generator == g:
                mark = ' <span class="mark">★</span>' if b.significant else ' <span class="mark-ns">☆</span>'
            cells.append(f"<td class='num'><span class='nb'>{esc(fmt(v))}</span>{mark}{_frozen(merged, g, m, frozen)}</td>")
            k.append(v)
        rows.append(cells)
        keys.append(k)
    arrows = ["", ""] + [" ↑" if h else " ↓" for h in hib[2:]]
    return sortable_table("leaderboard", [c + a for c, a in zip(cols, arrows)], rows, keys,
                          [None if j == 0 else h for j, h in enumerate(hib)],
                          caption="Generators by metric (↑ higher is better, ↓ lower is better).")


def _verdict_cell(d: Difference) -> str:
    v = d.verdict
    if v == "n.s.":
        return '<td class="ns">not significant</td>'
    if v == "—":
        return f'<td class="ns">not judged{": " + esc(d.note) if d.note else ""}</td>'
    return f'<td class="{v}">{v}</td>'


def _headline(diffs: list[Difference]) -> str:
    items = []
    for g, groups in headline(diffs):
        bits = []
        for key, cls, word in (("better", "better", "better"), ("worse", "worse", "worse"),
                               ("n.s.", "ns", "not significantly different"), ("—", "ns", "not judged")):
            if groups[key]:
                bits.append(f"<span class='{cls}'>{word}</span> on {esc(', '.join(groups[key]))}")
        items.append(f"<li><b>{esc(g)}</b>: {'; '.join(bits)}</li>")
    return f"<ul>{''.join(items)}</ul>"


def _comparison_table(diffs: list[Difference], merged: Merged) -> str:
    if not diffs:
        return ""
    out = ["<table><thead><tr><th>metric</th><th>generator</th><th>n</th><th>baseline</th><th>generator value</th>"
           "<th>difference [95% CI]</th><th>relative</th><th>p</th><th>test</th><th>verdict</th></tr></thead><tbody>"]
    for d in diffs:
        p = "—" if d.p_value is None else f"{d.p_value:.3g}"
        cls = "num ns" if d.verdict in ("n.s.", "—") else "num"
        out.append(
            f"<tr><td>{esc(d.metric)}</td><td>{esc(d.generator)}</td><td class='num'>{d.n}</td>"
            f"<td class='num'>{esc(fmt(d.baseline_value))}</td><td class='num'>{esc(fmt(d.value))}</td>"
            f"<td class='{cls}'>{esc(fmt(d.diff))} {esc(fmt_ci(d.ci_low, d.ci_high))}</td>"
            f"<td class='{cls}'>{esc(relative_text(d, merged))}</td>"
            f"<td class='num'>{esc(p)}</td><td class='small'>{esc(d.test)}</td>{_verdict_cell(d)}</tr>")
    out.append("</tbody></table>")
    out.append(f'<p class="small">Per-clip metrics: clips paired by prompt and seed; difference = generator − '
               f'baseline, mean over pairs with a 95% bootstrap CI; {esc(PAIRED_TEST)} test, significant at '
               f'p &lt; {ALPHA} (each comparison on its own, not corrected for multiple comparisons). Set-level metrics: {esc(SET_TEST)}, significant when the difference\'s interval '
               f'(± the two intervals’ half-widths combined in quadrature) excludes 0. Grey: not significant. '
               f'Relative differences are not shown where the baseline is 0 or closer to 0 than the '
               f'difference\'s own uncertainty.</p>')
    return "\n".join(out)


def _per_prompt(tables: dict, merged: Merged) -> str:
    if not tables:
        return "<p>No per-clip scores.</p>"
    out = []
    for i, (m, t) in enumerate(tables.items()):
        hib = merged.metrics[m].higher_is_better
        rows = [[f"<td>{esc(prompt)}</td>"] + [f"<td class='num nb'>{esc(fmt(r[g]))}</td>" for g in t.columns]
                for prompt, r in t.iterrows()]
        keys = [[str(prompt)] + [float(r[g]) for g in t.columns] for prompt, r in t.iterrows()]
        table = sortable_table(f"prompts-{i}", ["prompt"] + [str(g) for g in t.columns], rows, keys,
                               [False] + [hib] * len(t.columns))
        out.append(f"<details><summary>{esc(m)} <span class='small'>({esc(direction(hib))}; mean per prompt)"
                   f"</span></summary>{table}</details>")
    return "\n".join(out)


def _figure(p: Preview, caption: str) -> str:
    if p.gif:
        media = f'<img class="preview" alt="{esc(p.generator)} {esc(p.clip_id)}" src="{data_uri("image/gif", p.gif)}">'
    else:
        media = f'<div class="missing">{esc(p.missing or "no preview")}</div>'
    return f"<figure>{media}<figcaption>{caption}</figcaption></figure>"


def _grid(grid: list[Preview], merged: Merged, chosen_by: str) -> str:
    if not grid:
        return "<p>No clips to show.</p>"
    gens = [g for g in merged.generators if any(p.generator == g for p in grid)]
    prompts = list(dict.fromkeys(p.prompt for p in grid))
    cells = {(p.prompt, p.generator): p for p in grid}
    head = "".join(f"<th>{esc(g)}</th>" for g in gens)
    body = []
    for pr in prompts:
        tds = []
        for g in gens:
            p = cells.get((pr, g))
            tds.append("<td></td>" if p is None else
                       f"<td>{_figure(p, f'seed <span class=nb>{esc(p.seed)}</span> · {esc(p.clip_id)}')}</td>")
        body.append(f"<tr><th class='prompt'>“{esc(pr)}”</th>{''.join(tds)}</tr>")
    return (f"<p class='small'>{esc(chosen_by)} One clip per cell (the lowest seed), looping.</p>"
            f"<div class='scroll'><table class='grid'><thead><tr><th>prompt</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _previews(previews: list[Preview], merged: Merged) -> str:
    if not previews:
        return "<p>No per-clip scores to rank.</p>"
    out = []
    for m in dict.fromkeys(p.metric for p in previews):
        hib = merged.metrics[m].higher_is_better
        out.append(f"<h3>{esc(m)} <span class='small'>{esc(direction(hib))}</span></h3>")
        for g in dict.fromkeys(p.generator for p in previews if p.metric == m):
            groups = []
            for kind in ("best", "worst", "same"):
                items = [p for p in previews if p.metric == m and p.generator == g and p.kind == kind]
                if not items:
                    continue
                label = {"same": f"all clips score {fmt(items[0].value)}"}.get(kind, kind)
                figs = [_figure(p, f"{esc(m)}=<span class='nb'>{esc(fmt(p.value))}</span><br>“{esc(p.prompt)}” "
                                   f"seed <span class='nb'>{esc(p.seed)}</span><br>{esc(p.clip_id)}") for p in items]
                groups.append(f"<div><div class='small'>{esc(label)}</div><div class='strip'>{''.join(figs)}</div></div>")
            out.append(f"<div class='gen'><div class='small'>{esc(g)}</div><div class='pair'>{''.join(groups)}</div></div>")
    return "\n".join(out)


def _failures(df) -> str:
    if df.empty:
        return "<p>No failed clips.</p>"
    rows = "".join(f"<tr><td>{esc(r.generator)}</td><td>{esc(r.clip_id)}</td><td>{esc(r.stage)}</td>"
                   f"<td>{esc(r.error)}</td></tr>" for r in df.itertuples())
    return ("<table><thead><tr><th>generator</th><th>clip</th><th>stage</th><th>error</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _provenance(merged: Merged) -> str:
    out = []
    for r in merged.runs:
        res = r.results
        info = {"run": r.name, **res.model_dump(mode="json", include={
            "created", "suite_path", "suite_hash", "provenance", "generators", "backbones"})}
        out.append(f"<details><summary>{esc(r.name)}</summary><pre>"
                   f"{esc(json.dumps(info, indent=1, sort_keys=True, default=str))}</pre></details>")
    return "\n".join(out)


def render(merged: Merged, *, title: str, diffs: list[Difference], baseline: str | None,
           plots: dict[str, bytes | None], prompt_tables: dict, previews: list[Preview], failures_df,
           best: dict[str, Best] | None = None, baseline_why: str = "", grid: list[Preview] | None = None,
           grid_why: str = "") -> str:
    runs = ", ".join(r.name for r in merged.runs)
    created = "; ".join(f"{r.name}: {r.results.created}" for r in merged.runs)
    versions = sorted({r.results.provenance.vdeval for r in merged.runs})
    n_clips = len(merged.clips)
    n_failed = sum(1 for c in merged.clips if c.error)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p class='meta'>runs: {esc(runs)} · created {esc(created)} · vdeval {esc(', '.join(versions))} · "
        f"{n_clips} clips, {n_failed} failed · generators: {esc(', '.join(merged.generators))}</p>",
        "<nav><a href='#summary'>summary</a><a href='#board'>leaderboard</a><a href='#comparison'>comparison</a>"
        "<a href='#grid'>same prompt</a><a href='#plots'>plots</a><a href='#prompts'>per prompt</a>"
        "<a href='#previews'>best/worst clips</a><a href='#failures'>failures</a>"
        "<a href='#provenance'>provenance</a></nav>",
        "<h2 id='summary'>Summary</h2>", _summary_table(merged, best or {}),
        _img(plots.get("summary"), "summary plot"),
        "<h2 id='board'>Leaderboard</h2>", _leaderboard(merged, best or {}),
        "<h2 id='comparison'>Compared with the baseline</h2>",
    ]
    if diffs:
        why = f" ({esc(baseline_why)}; choose another with <code>--baseline</code> or the suite's <code>baseline:</code>)"
        parts += [f"<p>Baseline: <b>{esc(baseline)}</b>{why if baseline_why else ''}.</p>", _headline(diffs),
                  _comparison_table(diffs, merged), _img(plots.get("differences"), "differences to the baseline")]
    else:
        parts.append("<p>One generator only: nothing to compare.</p>")
    parts += ["<h2 id='grid'>Same prompt, every generator</h2>", _grid(grid or [], merged, grid_why)]
    parts.append("<h2 id='plots'>Plots</h2>")
    if plots.get("steps"):
        parts += ["<h3>Metrics against training step (band: 95% CI)</h3>", _img(plots["steps"], "metrics vs step")]
    if plots.get("curves"):
        parts += ["<h3>Per-frame curves (mean over clips, band: 95% bootstrap CI)</h3>",
                  _img(plots["curves"], "per-frame curves")]
    if not (plots.get("steps") or plots.get("curves")):
        parts.append("<p>No training steps or per-frame curves in these results.</p>")
    parts += [
        "<h2 id='prompts'>Per prompt</h2>", _per_prompt(prompt_tables, merged),
        "<h2 id='previews'>Best and worst clips</h2>",
        "<p class='small'>For each per-clip metric and each generator, its best and worst clips "
        "(nearest-neighbour scaled to fit, looping).</p>" if previews else "", _previews(previews, merged),
        "<h2 id='failures'>Failures</h2>", _failures(failures_df),
        "<h2 id='provenance'>Provenance</h2>", _provenance(merged),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"

"""vdeval report: tables, comparison statistics, files, determinism, a real browser, bad input."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vdeval.errors import ResultsError
from vdeval.results import (RESULTS_VERSION, load_results, ClipRecord)
from vdeval.store import save_array
from helpers import PROMPTS, METRICS, STEPS, clip_frames, cli_exit_code, make_results, write_run

@pytest.fixture(scope="module")
def three_gen_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs") / "nightly"
    return write_run(root, make_results(STEPS, failed=("ckpt_2k", 4), null_score=("ckpt_4k", 2, "warping_error")))


@pytest.fixture(scope="module")
def report_dir(three_gen_run, tmp_path_factory) -> Path:
    from vdeval.report import write_report

    out = tmp_path_factory.mktemp("report")
    index = write_report([three_gen_run], out)
    assert index == out / "index.html"
    return out


# --------------------------------------------------------------------------- statistics

def test_paired_differences_find_real_effects_and_not_noise():
    from vdeval.report.compare import compare_generators
    from vdeval.report.tables import load_runs
    import tempfile

    gens = {"base": {}, "same": {}, "worse": {"shift": {"warping_error": 0.002}},
            "better_set": {"shift": {"fvd": -20.0}}, "close_set": {"shift": {"fvd": 2.0}}}
    with tempfile.TemporaryDirectory() as d:
        merged = load_runs([write_run(Path(d) / "r", make_results(gens), with_clips=False)])
    diffs = {(x.generator, x.metric): x for x in compare_generators(merged, "base")}
    same = diffs[("same", "warping_error")]
    assert same.n == 12 and same.test == "Wilcoxon signed-rank"
    assert same.verdict == "n.s." and same.p_value > 0.05 and same.ci_low < 0 < same.ci_high
    worse = diffs[("worse", "warping_error")]
    # lower is better: +0.002 per clip against 0.0005 noise is clearly worse
    assert worse.verdict == "worse" and worse.p_value < 0.01 and worse.ci_low > 0
    assert abs(worse.diff - 0.002) < 0.0008
    assert diffs[("better_set", "fvd")].verdict == "better"  # 30 vs 50, CIs (±3/4) far apart
    assert diffs[("close_set", "fvd")].verdict == "n.s."  # 52 vs 50 within the intervals
    kvd = diffs[("worse", "kvd")]
    assert kvd.significant is None and "no confidence interval" in kvd.note  # never assumed


def test_set_level_difference_uses_interval_widths():
    from vdeval.compare import set_difference

    # bootstrap intervals of FVD sit above the point value; their width is what counts
    d = set_difference({"value": 40.0, "ci_low": 41.0, "ci_high": 49.0, "n": 64},
                       {"value": 50.0, "ci_low": 52.0, "ci_high": 60.0, "n": 64},
                       generator="b", baseline="a", metric="fvd", higher_is_better=False)
    assert d.diff == -10 and d.ci_high == pytest.approx(-10 + math.hypot(4, 4)) and d.verdict == "better"
    assert d.n == 64 and d.p_value is None
    close = set_difference({"value": 45.0, "ci_low": 41.0, "ci_high": 49.0}, {"value": 50.0, "ci_low": 46.0,
                           "ci_high": 54.0}, generator="b", baseline="a", metric="fvd", higher_is_better=False)
    assert close.verdict == "n.s."  # 5 apart, half-width sqrt(32) = 5.66


def test_pairing_uses_prompt_and_seed_not_order():
    from vdeval.compare import clip_values, pair_values

    a = [(("p", "0"), "x0", 1.0), (("p", "1"), "x1", 2.0), (("q", "0"), "x2", 3.0)]
    b = [(("q", "0"), "y2", 30.0), (("p", "0"), "y0", 10.0)]  # other order, one missing
    xa, xb = pair_values(a, b)
    assert sorted(zip(xa.tolist(), xb.tolist())) == [(1.0, 10.0), (3.0, 30.0)]
    clips = [ClipRecord(generator="g", prompt="p", seed=0, clip_id="c", scores={"m": None}),
             ClipRecord(generator="g", prompt="p", seed=1, clip_id="d", scores={"m": 1.0}),
             ClipRecord(generator="g", prompt="p", seed=2, clip_id="e", error="boom")]
    assert [v for *_, v in clip_values(clips, "g", "m")] == [1.0]  # null and failed dropped


def test_curve_band_handles_ragged_curves_and_nulls():
    from vdeval.report.compare import curve_band

    rng = np.random.default_rng(0)
    curves = [list(1.0 + 0.1 * rng.standard_normal(6)) for _ in range(20)] + [[1.0, None, 1.0]]
    mean, lo, hi, count = curve_band(curves)
    assert mean.shape == (6,) and count.tolist() == [21, 20, 21, 20, 20, 20]
    assert np.all(lo <= mean) and np.all(mean <= hi) and np.all(hi - lo < 0.15) and np.all(hi - lo > 0.02)
    assert curve_band([[1.0, 2.0]]) is None  # one clip: no band


def test_gif_preview_is_nearest_upscaled_and_deterministic():
    from io import BytesIO

    from vdeval.report.previews import gif_bytes

    frames = clip_frames("g", 1, 2, T=40)
    a, b = gif_bytes(frames), gif_bytes(frames.copy())
    assert a == b
    im = Image.open(BytesIO(a))
    assert im.size == (96, 96) and im.n_frames <= 16 and im.n_frames >= 8
    first = np.asarray(im.convert("RGB"))
    # nearest-neighbour: each source pixel is a 6x6 block of one colour
    assert np.array_equal(first[::6, ::6], frames[0])
    with pytest.raises(ValueError):
        gif_bytes(np.zeros((4, 8, 8), np.uint8))


# --------------------------------------------------------------------------- files

def test_report_writes_three_files_with_the_numbers(report_dir, three_gen_run):
    html = (report_dir / "index.html").read_text()
    md = (report_dir / "summary.md").read_text()
    csv = pd.read_csv(report_dir / "summary.csv")
    results = load_results(three_gen_run)
    assert len(csv) == 3 * len(METRICS)
    row = results.row("ckpt_2k", "warping_error")
    got = csv[(csv.generator == "ckpt_2k") & (csv.metric == "warping_error")].iloc[0]
    assert got.value == pytest.approx(row.value) and got.ci_low == pytest.approx(row.ci_low)
    assert got.n == 11 and got.n_failed == 1 and got.backbone == "dis" and got.direction == "lower"
    assert csv[csv.metric == "kvd"].ci_low.isna().all()  # no CI stays empty, not invented
    # the failed clip and the null score are reported, not silently lost
    assert "sampler diverged" in html and "sampler diverged" in md
    # default baseline: the last training step (ckpt_4k), said on the page; the earlier ones are worse
    assert "❌ worse" in md and "Compared with baseline ckpt\\_4k" in md and "the last training step" in html
    # summary table: backbone and n beside each number, direction of better
    from vdeval.report.tables import fmt

    assert f"{fmt(row.value)}</span>" in html and "n=11, 1 failed · dis" in html
    assert "↓ lower is better" in html and "↑ higher is better" in html
    assert "Wilcoxon signed-rank" in html
    # every image is inline: no src that is not a data URI, no external stylesheet or script
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    # 4 figures (summary, differences, steps, curves) + previews (the best and the worst clip per clip
    # metric and generator) + the same-prompt grid (4 prompts x 3 generators)
    assert html.count('src="data:image/png') == 4
    assert html.count('src="data:image/gif') == 3 * 3 * 2 + 4 * 3


def test_prompts_and_names_are_escaped(report_dir):
    html = (report_dir / "index.html").read_text()
    md = (report_dir / "summary.md").read_text()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; a &quot;quoted&quot; | pipe" in html
    assert "<script>" not in md


def test_report_is_deterministic(three_gen_run, report_dir, tmp_path):
    from vdeval.report import write_report

    write_report([three_gen_run], tmp_path / "again")
    names = sorted(p.name for p in report_dir.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "again").iterdir())
    for n in names:
        assert (report_dir / n).read_bytes() == (tmp_path / "again" / n).read_bytes(), n
    # ...and across library versions: no version or time stamp inside the figures
    import base64

    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', (report_dir / "index.html").read_text())
    assert len(pngs) == 4
    for b64 in pngs:
        data = base64.b64decode(b64)
        assert data.startswith(b"\x89PNG") and b"matplotlib" not in data.lower() and b"tIME" not in data


def test_merging_runs_prefixes_clashing_generators_and_pairs_across_runs(tmp_path):
    from vdeval.report import write_report
    from vdeval.report.compare import compare_generators
    from vdeval.report.tables import load_runs

    a = write_run(tmp_path / "monday", make_results({"final": {}, "ema": {}}, rng_seed=1), with_clips=False)
    b = write_run(tmp_path / "tuesday", make_results({"final": {"shift": {"warping_error": 0.003}}}, rng_seed=2))
    merged = load_runs([a, b])
    assert list(merged.generators) == ["monday/final", "ema", "tuesday/final"]
    d = {(x.generator, x.metric): x for x in compare_generators(merged)}
    assert d[("tuesday/final", "warping_error")].n == 12 and d[("tuesday/final", "warping_error")].verdict == "worse"
    # another backbone's numbers are another quantity: listed, never judged
    res = make_results({"i3d_final": {"shift": {"fvd": -30.0}}}, metrics=["fvd"])
    res.summary[0].backbone = "i3d"
    c = write_run(tmp_path / "published", res, with_clips=False)
    [fvd] = [x for x in compare_generators(load_runs([a, c])) if x.generator == "i3d_final"]
    assert fvd.verdict == "—" and fvd.note == "not comparable: backbone i3d vs embedded"
    index = write_report([a, b], tmp_path / "out", baseline="monday/final")
    html = index.read_text()
    assert "tuesday/final" in html
    # monday has no clips on disk: previews of its clips are placeholders, tuesday's are GIFs
    assert "frames not in the run directory" in html and 'src="data:image/gif' in html


def test_one_generator_no_ci_all_null_and_no_clips(tmp_path):
    from vdeval.report import write_report

    res = make_results({"only": {}}, metrics=["warping_error", "kvd"], seeds=[0])
    for c in res.clips:
        c.scores["warping_error"] = math.nan
        c.curves = {}
    for r in res.summary:
        if r.metric == "warping_error":
            r.value, r.ci_low, r.ci_high, r.n = None, None, None, 0
    index = write_report([write_run(tmp_path / "solo", res, with_clips=False)], tmp_path / "out")
    html = index.read_text()
    assert "One generator only" in html and "no CI" in html and "—" in html
    assert "No per-clip scores to rank" in html
    assert pd.read_csv(tmp_path / "out" / "summary.csv").shape[0] == 2


def test_odd_but_valid_results_still_give_a_report(tmp_path):
    """Everything the runner may leave out or null: the report says so instead of crashing."""
    from vdeval.report import write_report

    res = make_results({"a": {}, "b": {"step": 2000}, "all_failed": {}}, metrics=["warping_error", "fvd"], seeds=[0])
    res.failures = []  # older runners only marked the clip
    for c in res.clips:
        if c.generator == "all_failed":
            c.error, c.scores, c.curves = "OOM", {}, {}
        elif c.generator == "b":
            c.curves["warping_error"] = [None, None, 0.5] if c.seed == 0 else []
            c.scores["warping_error"] = None
    for r in res.summary:
        if r.generator == "all_failed":
            r.value, r.ci_low, r.ci_high, r.n, r.n_failed, r.n_real = None, None, None, 0, 4, None
            r.error = "FeatureError: no clips"
    run = write_run(tmp_path / "odd", res, with_clips=False)
    save_array(run / "clips" / "a" / "p00-s0.npy", np.zeros((3, 0, 4, 3), np.uint8))  # empty frames
    (run / "clips" / "a" / "p01-s0.npy").write_bytes(b"not numpy")
    html = write_report([run], tmp_path / "out").read_text()
    assert "FeatureError: no clips" in html and "OOM" in html
    assert "unreadable frames" in html


def test_report_keeps_clip_paths_inside_the_run(tmp_path):
    from vdeval.report.previews import clip_file

    assert clip_file(tmp_path, "g", "../../../etc/passwd") is None
    assert clip_file(tmp_path, "g", "ok") == (tmp_path / "clips" / "g" / "ok.npy").resolve()


# --------------------------------------------------------------------------- bad input, through the CLI

_cli = cli_exit_code


def test_cli_report_ok(three_gen_run, tmp_path, capsys):
    assert _cli(["report", str(three_gen_run), "-o", str(tmp_path / "r"), "--baseline", "ckpt_4k",
                 "--previews", "1"]) == 0
    assert (tmp_path / "r" / "index.html").exists() and "baseline ckpt\\_4k" in (tmp_path / "r" / "summary.md").read_text()
    assert _cli(["report", str(three_gen_run), "-o", str(tmp_path / "r2"), "--baseline", "ckpt_1k"]) == 0
    assert "chosen with --baseline" in (tmp_path / "r2" / "index.html").read_text()


def test_cli_bad_inputs_exit_2_with_one_clear_line(three_gen_run, tmp_path, capsys):
    old = write_run(tmp_path / "old", make_results({"a": {}}), with_clips=False, version=RESULTS_VERSION + 1)
    assert _cli(["report", str(three_gen_run), str(old), "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"results version {RESULTS_VERSION + 1} is not supported" in err and err.count("\n") == 1

    other = write_run(tmp_path / "other", make_results({"a": {}}, metrics=["clip_score"]), with_clips=False)
    only_fvd = write_run(tmp_path / "fvdonly", make_results({"b": {}}, metrics=["fvd"]), with_clips=False)
    assert _cli(["report", str(other), str(only_fvd), "-o", str(tmp_path / "x")]) == 2
    assert "no metric in common" in capsys.readouterr().err

    assert _cli(["report", str(three_gen_run), "-o", str(tmp_path / "x"), "--baseline", "ckpt_3k"]) == 2
    err = capsys.readouterr().err
    assert "baseline generator 'ckpt_3k' is not in the results" in err and "did you mean 'ckpt_" in err

    assert _cli(["report", str(tmp_path / "missing_run"), "-o", str(tmp_path / "x")]) == 2
    assert "no results file" in capsys.readouterr().err
    with pytest.raises(ResultsError):
        from vdeval.report import write_report

        write_report([], tmp_path / "x")


# --------------------------------------------------------------------------- at-a-glance reading (issue 13)

def test_best_marks_follow_direction_and_significance():
    from vdeval.report.compare import best_marks
    from vdeval.report.tables import merge_results

    res = make_results({"a": {"shift": {"warping_error": 0.004, "clip_score": 0.0}},
                        "b": {"shift": {"warping_error": 0.0, "clip_score": 0.00001}},
                        "c": {"shift": {"warping_error": 0.002, "clip_score": 0.0}}},
                       metrics=["warping_error", "clip_score", "frozen_motion"], noise=0.0005)
    for c in res.clips:  # frozen_motion: a and b share the best value 0 -> neither stands out
        c.scores["frozen_motion"] = 1.0 if c.generator == "c" else 0.0
    for r in res.summary:
        if r.metric == "frozen_motion":
            r.value = r.ci_low = r.ci_high = 1.0 if r.generator == "c" else 0.0
    best = best_marks(merge_results([("r", Path("."), res)]))
    assert best["warping_error"].generator == "b" and best["warping_error"].significant  # lower is better
    # clip_score: the generators differ by at most 1e-5 under noise 5e-4: whichever has the best value
    # (here a, by noise) is not significantly ahead of every other, so it gets the hollow mark only
    assert best["clip_score"].generator == "a" and not best["clip_score"].significant
    assert best["clip_score"].ties == ["b", "c"]
    assert "frozen_motion" not in best


def test_relative_difference_is_suppressed_near_a_zero_baseline(tmp_path):
    from vdeval.report import write_report

    res = make_results({"base": {}, "other": {"shift": {"warping_error": 0.01}}}, metrics=["warping_error"])
    for c in res.clips:
        if c.generator == "base":
            c.scores["warping_error"] = 1.8e-8
    for r in res.summary:
        if r.generator == "base":
            r.value = r.ci_low = r.ci_high = 1.8e-8
    index = write_report([write_run(tmp_path / "r", res, with_clips=False)], tmp_path / "out", baseline="base")
    html, md = index.read_text(), (tmp_path / "out" / "summary.md").read_text()
    assert "n/a (baseline ≈ 0)" in html and "n/a (baseline ≈ 0)" in md
    assert not re.search(r"\+\d{5,}\.\d%", html + md)  # no +254878178.6%


def test_default_baseline_is_the_suites_declared_one_then_the_last_step(tmp_path):
    from vdeval.report.tables import load_runs

    res = make_results(STEPS, metrics=["warping_error"])
    run = write_run(tmp_path / "steps", res, with_clips=False)
    assert load_runs([run]).default_baseline() == ("ckpt_4k", "the last training step")
    res.suite["baseline"] = "ckpt_2k"
    run = write_run(tmp_path / "declared", res, with_clips=False)
    assert load_runs([run]).default_baseline() == ("ckpt_2k", "the suite's declared baseline")
    plain = write_run(tmp_path / "plain", make_results({"x": {}, "y": {}}, metrics=["warping_error"]), with_clips=False)
    assert load_runs([plain]).default_baseline() == ("x", "the first generator")


def test_suite_baseline_must_name_a_generator():
    from vdeval.suite import validate_data

    data = {"name": "s", "generators": [{"name": "final", "kind": "world"}, {"name": "early", "kind": "world"}],
            "metrics": [{"name": "frame_difference"}], "baseline": "finale"}
    suite, problems = validate_data(data)
    assert suite is None and problems == ["baseline: 'finale' is not a generator of this suite (did you mean 'final'?)"]
    suite, problems = validate_data({**data, "baseline": "early"})
    assert problems == [] and suite.baseline == "early"


def test_previews_are_picked_per_generator_and_constant_metrics_show_one_clip(tmp_path):
    from vdeval.report.previews import select_previews
    from vdeval.report.tables import load_runs

    res = make_results({"frozen": {"shift": {"warping_error": -1.0}}, "good": {}},
                       metrics=["warping_error", "frozen_motion"])
    for c in res.clips:
        c.scores["frozen_motion"] = 1.0 if c.generator == "frozen" else c.scores["frozen_motion"]
    merged = load_runs([write_run(tmp_path / "r", res)])
    chosen = select_previews(merged, k=2)
    we = [p for p in chosen if p.metric == "warping_error"]
    # the frozen control has far lower warping error, yet "good" still gets its own best and worst
    assert {(p.generator, p.kind) for p in we} == {(g, k) for g in ("frozen", "good") for k in ("best", "worst")}
    assert sum(p.generator == "good" for p in we) == 4
    fm = [p for p in chosen if p.metric == "frozen_motion" and p.generator == "frozen"]
    assert [(p.kind, p.value) for p in fm] == [("same", 1.0)]


def test_wide_previews_keep_aspect_inside_the_box():
    from vdeval.report.previews import gif_bytes

    wide = np.zeros((4, 180, 320, 3), np.uint8)
    assert Image.open(__import__("io").BytesIO(gif_bytes(wide))).size == (144, 81)
    tall = np.zeros((4, 64, 32, 3), np.uint8)
    assert Image.open(__import__("io").BytesIO(gif_bytes(tall))).size == (48, 96)


def test_grid_prompts_chosen_or_most_discriminating(three_gen_run, tmp_path, capsys):
    from vdeval.report.compare import discriminating_prompts
    from vdeval.report.tables import load_runs

    picked = discriminating_prompts(load_runs([three_gen_run]), k=2)
    assert len(picked) == 2 and set(picked) <= set(PROMPTS)
    assert _cli(["report", str(three_gen_run), "-o", str(tmp_path / "g"), "--grid-prompt", PROMPTS[1]]) == 0
    html = (tmp_path / "g" / "index.html").read_text()
    grid = html[html.index("<table class='grid'>"):]
    grid = grid[:grid.index("</table>")]
    assert grid.count("<tr><th class='prompt'>") == 1 and "two squares swap places" in grid
    assert _cli(["report", str(three_gen_run), "-o", str(tmp_path / "g2"), "--grid-prompt", "two squares swap"]) == 2
    assert "did you mean 'two squares swap places'" in capsys.readouterr().err


def test_flat_panels_get_a_meaningful_axis():
    import matplotlib.pyplot as plt

    from vdeval.report.plots import _flat_axis

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0, 0, 0])
    _flat_axis(ax, [0.0, 0.0, 0.0])
    assert ax.get_ylim() == (0.0, 1.0) and ax.texts[0].get_text() == "all values 0"
    fig2, ax2 = plt.subplots()
    ax2.plot([0, 1], [1.8e-8, 1.8e-8])
    _flat_axis(ax2, [1.8e-8, 1.8e-8])
    assert ax2.get_ylim() == pytest.approx((1.62e-8, 1.98e-8))
    plt.close(fig)
    plt.close(fig2)


def test_previews_of_clips_referenced_by_path_check_the_file_is_unchanged(tmp_path):
    from vdeval.report.previews import _referenced_frames
    from vdeval.video.source import fingerprint

    video = tmp_path / "clip.mp4"
    video.write_bytes((Path(__file__).resolve().parents[1] / "data" / "report_footage" / "pristine" / "p001_s0.mp4").read_bytes())
    meta = tmp_path / "c.json"
    meta.write_text(json.dumps({"file": str(video), "fingerprint": fingerprint(video)}))
    frames, why = _referenced_frames(meta)
    assert why == "" and frames.shape == (10, 144, 256, 3)
    meta.write_text(json.dumps({"file": str(video), "fingerprint": "0:0:other"}))
    assert _referenced_frames(meta) == (None, "the clip's file changed since it was scored")
    meta.write_text(json.dumps({"file": str(tmp_path / "gone.mp4")}))
    assert _referenced_frames(meta) == (None, "the clip's file is gone")

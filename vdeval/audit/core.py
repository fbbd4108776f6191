"""`vdeval audit`: does each metric catch the failure it is meant to catch?

Take N clean world clips, apply every corruption at several severities, compute features once per
clip with the runner's featurize stage (one flow pass per clip however many flow metrics ask for
it), score every metric with its score stage, and report per (metric, corruption):
  AUROC at each severity: the probability that a clean clip scores better than a corrupted one
    (oriented by higher_is_better; ties count half; 0.5 = blind, 1.0 = always separates);
  Spearman rho between severity (0 for the clean clips) and the oriented badness of the score
    (positive = the score worsens as the corruption strengthens).
Besides the world's video corruptions, the audit has one text-side corruption, `caption_swap`:
the video is untouched and the prompt has round(5 * severity) of its five attributes replaced by
other values (colour, shape, background, motion, size of the first object, in that order), so at
severity 1 it is the caption of a different world clip. Reference images (for image-to-video
metrics) are always the clean clip's first frame.

By default every per-clip metric in the registry is audited. A metric class may name
`audit_extras` ({extra name: higher_is_better}), extras that get their own rows, and
`audit_corruption`, the corruption it is built to catch (else OWN_FAILURE below), and
`audit_extra_corruptions` ({extra name: corruption}) where an extra is built for another one.
Written to --out: audit.csv (long: one row per metric/corruption/severity), audit.md (wide table),
audit.png (heatmap of AUROC at the moderate severity), scores.csv (every clip's scores).

As in a run, one bad clip never ends the audit: a corruption or a feature pass that raises on a
clip leaves that clip out (listed under AuditResult.failures and in audit.md), and a metric
that raises on a clip scores NaN there with the error in the `note` column of scores.csv.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from vdeval import registry
from vdeval.errors import VdevalError
from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, FeatureCache
from vdeval.run.featurizing import featurize_safely
from vdeval.run.progress import one_line
from vdeval.run.scoring import empty_scores, score_clip

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_METRICS = ("frame_difference", "warping_error", "frozen_motion", "identity_drift", "reference_fidelity",
                   "clip_score", "video_text_alignment", "prompt_drift", "scene_cuts")
DEFAULT_SEVERITIES = (0.25, 0.5, 1.0)
MODERATE = 0.5
TEXT_CORRUPTIONS = ("caption_swap",)
# the corruption each metric is built to catch: the audit's headline check. A metric class may
# also name it itself with `audit_corruption = "..."`.
OWN_FAILURE = {
    "frame_difference": "flicker", "warping_error": "flicker", "frozen_motion": "freeze",
    "identity_drift": "identity_swap", "reference_fidelity": "identity_swap", "clip_score": "caption_swap",
    "video_text_alignment": "caption_swap", "prompt_drift": "scene_cut", "scene_cuts": "scene_cut",
    "motion_jitter": "camera_shake", "physical_plausibility": "teleport", "grounded_alignment": "caption_swap",
    "motion_smoothness": "stutter", "background_consistency": "scene_cut", "world_background_consistency": "texture_swim",
}


def default_metrics() -> list[str]:
    """Every per-clip metric installed: the ones above first, then any other registered one."""
    names = [m for m in DEFAULT_METRICS if m in registry.names("metric")]
    for m in registry.names("metric"):
        if m not in names:
            try:
                if registry.resolve("metric", m).level == "clip":
                    names.append(m)
            except Exception:  # a metric module that cannot import is reported when asked for by name
                continue
    return names


def own_failure(metric) -> str | None:
    return getattr(metric, "audit_corruption", None) or OWN_FAILURE.get(metric.name)


class MemoryCache(FeatureCache):
    """In-process feature cache: a corrupted clip identical to another (caption_swap keeps the video)
    reuses its features instead of recomputing them."""

    def __init__(self):
        super().__init__(None)
        self._d: dict = {}

    def load(self, backbone, kind, key):
        return self._d.get((backbone.identity_hash(), kind, key))

    def save(self, backbone, kind, key, arrays):
        self._d[(backbone.identity_hash(), kind, key)] = arrays


# ---- pure statistics ----------------------------------------------------------------------------

def auroc(clean, corrupted, higher_is_better: bool) -> float:
    """P(a clean score is better than a corrupted one) + 0.5 P(tie); NaNs dropped; NaN if a side is empty."""
    a = np.asarray(clean, np.float64)
    b = np.asarray(corrupted, np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    if not higher_is_better:
        a, b = -a, -b
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([a, b]))  # Mann-Whitney U with midranks for ties
    u = ranks[: a.size].sum() - a.size * (a.size + 1) / 2
    return float(u / (a.size * b.size))


def flag_accuracy(clean, corrupted, higher_is_better: bool) -> float:
    """For a 0/1 score (a flag or a hit): the fraction of clips called right, clean clips given the
    good value and corrupted ones the bad value; NaN when a score is not 0/1 or a side is empty."""
    a = np.asarray(clean, np.float64)
    b = np.asarray(corrupted, np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0 or not np.isin(np.concatenate([a, b]), (0.0, 1.0)).all():
        return float("nan")
    good = 1.0 if higher_is_better else 0.0
    return float(((a == good).sum() + (b != good).sum()) / (a.size + b.size))


def severity_spearman(severities, scores, higher_is_better: bool) -> float:
    """Spearman rho of severity against badness (score negated when higher is better); NaN if undefined."""
    x = np.asarray(severities, np.float64)
    y = np.asarray(scores, np.float64)
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(x, -y if higher_is_better else y).statistic)


# ---- the text-side corruption -------------------------------------------------------------------

SWAP_ORDER = ("color", "shape", "background", "motion", "size")


def swap_caption(caption: str, severity: float, seed: int) -> str:
    """The caption with round(5 * severity) attributes replaced (see module docstring)."""
    from vdeval.world.scene import (
        BACKGROUNDS,
        COLORS,
        MOTIONS,
        SHAPES,
        SIZES,
        ObjectSpec,
        Scene,
        caption_of,
        parse_caption,
    )

    if not 0.0 <= severity <= 1.0:
        raise VdevalError(f"severity must be in [0, 1], got {severity}")
    n = int(round(5 * severity))
    if n == 0:
        return caption
    p = parse_caption(caption)
    rng = np.random.default_rng([int(seed), 0x5CA9])
    o = dict(p["objects"][0])
    bg = p["background"]
    options = {"color": tuple(COLORS), "shape": SHAPES, "motion": MOTIONS, "size": tuple(SIZES)}

    def other(values, current):
        c = [v for v in values if v != current]
        return c[int(rng.integers(len(c)))]

    for attr in SWAP_ORDER[:n]:
        if attr == "background":
            bg = other(BACKGROUNDS, bg)
        else:
            o[attr] = other(options[attr], o[attr])
    objs = [ObjectSpec(**o)] + [ObjectSpec(**x) for x in p["objects"][1:]]
    return caption_of(Scene(tuple(objs), bg, pan=p["pan"]))


# ---- the audit ------------------------------------------------------------------------------------

@dataclass
class AuditResult:
    table: pd.DataFrame  # long form: one row per (score, corruption, severity)
    scores: pd.DataFrame  # every clip's scores
    skipped: list[str] = field(default_factory=list)
    computed: dict = field(default_factory=dict)  # featurize's counts: (kind, backbone) -> clips computed
    n_clips: int = 0
    seconds: float = 0.0
    severities: tuple = DEFAULT_SEVERITIES
    spec: dict = field(default_factory=dict)
    # clips that could not be made or featurized, one line each ("3/freeze@0.5: corruption: ...");
    # the audit goes on without them. A metric that raises on a clip gives NaN with a note instead.
    failures: list[str] = field(default_factory=list)

    def own_failure(self, severity: float = MODERATE):
        """Rows of each metric's own failure at `severity` (the headline figures)."""
        t = self.table
        return t[(t["own_failure"]) & (np.isclose(t["severity"], severity))]


def _parse_backbones(overrides, metric_names) -> dict[str, str]:
    """'metric=backbone' for one metric, or a bare 'backbone' for every metric that allows it."""
    out: dict[str, str] = {}
    for item in overrides or ():
        if "=" in item:
            m, b = (s.strip() for s in item.split("=", 1))
            registry.check_name("metric", m)
            registry.check_name("backbone", b)
            out[m] = b
    for item in overrides or ():
        if "=" not in item:
            b = item.strip()
            registry.check_name("backbone", b)
            for m in metric_names:
                cls = registry.resolve("metric", m)
                if m not in out and cls.allowed_backbones and b in cls.allowed_backbones:
                    out[m] = b
    return out


def _check_arguments(n: int, severities, metrics, corruptions) -> tuple[tuple, list[str], list[str]]:
    """(severities, metric names, corruption names), each checked; bad ones raise with a guess."""
    from vdeval.world.corruptions import CORRUPTIONS

    if n < 2:
        raise VdevalError(f"the audit needs at least 2 clean clips, got {n}")
    sev = tuple(float(s) for s in severities)
    if not sev or any(not 0.0 < s <= 1.0 for s in sev):
        raise VdevalError(f"severities must be in (0, 1], got {list(severities)}")
    metric_names = list(metrics or default_metrics())
    for m in metric_names:
        registry.check_name("metric", m)
    all_corr = tuple(CORRUPTIONS) + TEXT_CORRUPTIONS
    corr_names = list(corruptions or all_corr)
    for c in corr_names:
        if c not in all_corr:
            guess = registry.closest(c, all_corr)
            raise VdevalError(f"unknown corruption {c!r}", f"did you mean {guess!r}?" if guess else f"one of {', '.join(all_corr)}")
    return sev, metric_names, corr_names


def _live_metrics(metric_names: list[str], chosen: dict[str, str], named: bool, pool: BackbonePool):
    """(metrics to audit, skip notes). Metrics whose backbones cannot load (weights missing,
    optional package absent) are skipped, unless asked for by name: then it is an error."""
    live, skipped = [], []
    for name in metric_names:
        cls = registry.resolve("metric", name)
        if cls.level != "clip":
            skipped.append(f"{name}: set-level metric, the audit scores per-clip metrics")
            continue
        if getattr(cls, "audit_exempt", None) and not (name in chosen or named):
            skipped.append(f"{name}: not audited on the world: {cls.audit_exempt}")  # e.g. no faces in the world
            continue
        metric = cls(backbone=chosen.get(name))
        if cls.allowed_backbones and metric.backbone not in cls.allowed_backbones:
            raise VdevalError(f"{name} works with {', '.join(cls.allowed_backbones)}, not {metric.backbone!r}")
        try:
            for req in metric.requests():
                pool.get(req.backbone, req.options)
        except (VdevalError, ImportError, OSError) as e:
            why = getattr(e, "message", None) or str(e).splitlines()[0]
            if name in chosen or named:  # asked for by name: skipping it would exit 0 unaudited
                raise VdevalError(f"{name} [{metric.backbone}] cannot be audited: backbone unavailable: {why}",
                                  "install its weights (`vdeval weights`) or leave it out") from None
            skipped.append(f"{name} [{metric.backbone}]: skipped, backbone unavailable: {why}")
            continue
        live.append(metric)
    if not live:
        raise VdevalError("no metric can be audited: " + "; ".join(skipped),
                          "install the missing weights (`vdeval weights`) or pick backbones with --backbone")
    return live, skipped


def _corrupted(wc, c: str, v: float, s: int):
    """(video, prompt) of world clip `wc` under corruption `c` at severity `v`."""
    from vdeval.world.corruptions import CORRUPTIONS

    if c == "caption_swap":
        return wc.video, swap_caption(wc.caption, v, s)
    return CORRUPTIONS[c](wc, v, s), wc.caption


def _render_clips(n: int, seed: int, spec, corr_names: list[str], sev: tuple, failures: list[str]):
    """Clean clips and their corrupted versions: (clips, (clip index, corruption, severity) per
    clip, indices of corrupted clips whose pixels the corruption left as they were). A corruption
    that raises on one clip is recorded in `failures` and that clip left out."""
    from vdeval.world import sample_clip

    clips: list[ClipFeatures] = []
    meta: list[tuple[int, str, float]] = []
    # unchanged clips have no failure to catch: left out of AUROC and Spearman, counted in n_unchanged
    unchanged: set[int] = set()
    for i in range(n):
        s = seed + i
        wc = sample_clip(s, spec)
        clips.append(ClipFeatures(f"{i}/clean", wc.video, wc.caption, wc.reference_image))
        meta.append((i, "clean", 0.0))
        for c in corr_names:
            for v in sev:
                try:
                    video, prompt = _corrupted(wc, c, v, s)
                except Exception as e:  # one clip's corruption failing must not end the audit
                    failures.append(f"{i}/{c}@{v:g}: corruption: {one_line(e)}")
                    continue
                if c != "caption_swap" and np.array_equal(video.frames, wc.video.frames):
                    unchanged.add(len(clips))  # e.g. texture_swim on a plain background
                clips.append(ClipFeatures(f"{i}/{c}@{v:g}", video, prompt, wc.reference_image))
                meta.append((i, c, v))
    return clips, meta, unchanged


def _featurize_all(clips: list[ClipFeatures], live, pool, cache, failures: list[str]) -> tuple[dict, set[str]]:
    """Every feature the metrics ask for (the runner's featurize stage, clip by clip where a batch
    raises): first one clip per distinct input (the same video, prompt or reference image recurs
    across corruptions), then all clips, whose features then come from the cache. Returns the
    computed counts and the ids of clips whose features failed (recorded in `failures`)."""
    from vdeval.features import ClipInput, merge_requests

    computed: dict = {}
    failed: dict[str, str] = {}
    for req in merge_requests(r for m in live for r in m.requests()):
        todo = [c for c in clips if c.clip_id not in failed]
        reps: dict[str, ClipFeatures] = {}
        for clip in todo:
            assert clip.video is not None  # audit clips keep their video (in memory, or its ArraySource)
            key = ClipInput(None, clip.prompt, clip.reference_image, clip.video.content_hash()).key_for(req.kind)
            reps.setdefault(key, clip)
        for part in (list(reps.values()), todo):
            counts, bad = featurize_safely([c for c in part if c.clip_id not in failed], [req], pool, cache)
            failed.update(bad)
            for key, count in counts.items():
                computed[key] = computed.get(key, 0) + count
    failures += [f"{cid}: features: {e}" for cid, e in failed.items()]
    return computed, set(failed)


def _score_rows(clips, meta, unchanged: set[int], live, failed: set[str]) -> list[dict]:
    """One row per (clip, score): the metric's value and each of its audit_extras. A metric that
    raises on a clip gives NaN there (the runner's score stage), and the audit goes on."""
    rows = []
    for k, (clip, (i, c, v)) in enumerate(zip(clips, meta)):
        if clip.clip_id in failed:
            continue
        same = k in unchanged
        for m in live:
            rec = empty_scores()
            score_clip(m, clip, m.name, rec)
            base = {"clip": i, "corruption": c, "severity": v, "metric": m.name, "backbone": m.backbone or "-",
                    "unchanged": same}
            rows.append({**base, "score": m.name, "higher_is_better": m.higher_is_better,
                         "value": rec["scores"][m.name], "note": rec["notes"].get(m.name, "")})
            extras = rec["extras"].get(m.name, {})
            for extra, hib in getattr(m, "audit_extras", {}).items():
                rows.append({**base, "score": f"{m.name}.{extra}", "higher_is_better": hib,
                             "value": float(extras.get(extra, float("nan"))), "note": ""})
    return rows


def _table(scores, corr_names: list[str], sev: tuple, own: dict) -> list[dict]:
    """Per (score, backbone, corruption, severity): AUROC of clean vs corrupted and Spearman rho."""
    import pandas as pd

    table = []
    for (score, backbone), g in scores.groupby(["score", "backbone"], sort=False):
        hib = bool(g["higher_is_better"].iloc[0])
        metric = g["metric"].iloc[0]
        clean = g[g["corruption"] == "clean"]["value"].to_numpy()
        for c in corr_names:
            gc_all = g[g["corruption"] == c]
            gc = gc_all[~gc_all["unchanged"]]
            severities, values = _both(pd, g, gc)
            rho = severity_spearman(severities, values, hib)
            for v in sev:
                bad = gc[np.isclose(gc["severity"], v)]["value"].to_numpy()
                n_same = int(gc_all[np.isclose(gc_all["severity"], v)]["unchanged"].sum())
                table.append({"score": score, "metric": metric, "backbone": backbone, "corruption": c, "severity": v,
                              "auroc": auroc(clean, bad, hib), "accuracy": flag_accuracy(clean, bad, hib),
                              "spearman": rho, "higher_is_better": hib,
                              "own_failure": own.get(score, own.get(metric)) == c,
                              "n_clean": int(np.isfinite(clean).sum()), "n_corrupted": int(np.isfinite(bad).sum()),
                              "n_unchanged": n_same})
    return table


def _both(pd, g, gc):
    both = pd.concat([g[g["corruption"] == "clean"], gc])
    return both["severity"], both["value"]


def run_audit(
    n: int = 32,
    spec=None,
    severities=DEFAULT_SEVERITIES,
    metrics=None,
    corruptions=None,
    backbones=None,
    seed: int = 0,
    pool: BackbonePool | None = None,
    cache: FeatureCache | None = None,
    progress=None,
) -> AuditResult:
    import pandas as pd

    from vdeval.world import WorldSpec

    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    spec = spec or WorldSpec()
    sev, metric_names, corr_names = _check_arguments(n, severities, metrics, corruptions)
    chosen = _parse_backbones(backbones, metric_names)
    pool = pool or BackbonePool()
    cache = cache or MemoryCache()
    live, skipped = _live_metrics(metric_names, chosen, bool(metrics), pool)

    say(f"rendering {n} clean clips and {len(corr_names)} corruptions x {len(sev)} severities")
    failures: list[str] = []
    clips, meta, unchanged = _render_clips(n, seed, spec, corr_names, sev, failures)
    kinds = sorted({f"{r.kind}[{r.backbone}]" for m in live for r in m.requests()})
    say(f"featurizing {len(clips)} clips: {', '.join(kinds)}")
    computed, failed = _featurize_all(clips, live, pool, cache, failures)

    own = {m.name: own_failure(m) for m in live}
    # an extra may name its own failure (audit_extra_corruptions), else it shares its metric's
    own.update({f"{m.name}.{x}": c for m in live for x, c in getattr(m, "audit_extra_corruptions", {}).items()})
    say(f"scoring {len(live)} metrics")
    scores = pd.DataFrame(_score_rows(clips, meta, unchanged, live, failed))
    table = _table(scores, corr_names, sev, own)
    return AuditResult(pd.DataFrame(table), scores, skipped, {f"{k}[{b}]": v for (k, b), v in computed.items()},
                       n, time.perf_counter() - t0, sev, spec.to_dict(), failures)

"""Partial freezes in the audit: each clip held for 25%, 50% or 75% of its pairs at its start, its
middle or its end (the motion resumes where it stopped, so the clip keeps its length), on world
clips and on natural footage. For each (share, place): the true share, what `frozen_share` and
`frozen_seconds` measure, frozen_share's AUROC against the clean clips, and the fraction that
VBench's clip-level rule (`frozen_motion`) calls frozen.
"""
from __future__ import annotations

import numpy as np

from vdeval.audit.core import auroc
from vdeval.features import ClipFeatures
from vdeval.metrics.frozen_motion import FrozenMotion
from vdeval.metrics.frozen_share import FrozenSeconds, FrozenShare
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.video.core import Video

SHARES = (0.25, 0.5, 0.75)
WHERE = ("start", "middle", "end")


def hold(video: Video, share: float, where: str) -> Video:
    """`video` with round(share * (T - 1)) of its pairs frozen at `where`; the motion resumes
    where it stopped (a stall, not a cut), so the clip keeps its T frames."""
    t = video.num_frames
    n = int(round(share * (t - 1)))
    if where == "start":
        idx = [0] * (n + 1) + list(range(1, t - n))
    elif where == "middle":
        a = (t - n) // 2
        idx = list(range(a)) + [a] * (n + 1) + list(range(a + 1, t - n))
    elif where == "end":
        idx = list(range(t - n)) + [t - n - 1] * n
    else:
        raise ValueError(f"where must be one of {WHERE}, got {where!r}")
    return Video(np.ascontiguousarray(video.frames[idx]), video.fps)


def partial_freeze_audit(videos: list[Video], domain: str = "world", backbone: str = "dis") -> list[dict]:
    """One row per (share, where) over `videos`: see the module docstring."""
    pool = BackbonePool("cpu")
    metrics = {"frozen_share": FrozenShare(backbone), "frozen_seconds": FrozenSeconds(backbone),
               "frozen_motion": FrozenMotion(backbone)}
    reqs = list(dict.fromkeys(r for m in metrics.values() for r in m.requests()))

    def score(v: Video) -> dict[str, float]:
        c = ClipFeatures("c", v)
        featurize([c], reqs, pool)
        return {k: m.score_clip(c).value for k, m in metrics.items()}

    clean = [score(v) for v in videos]
    rows = []
    for share in SHARES:
        for where in WHERE:
            held = [score(hold(v, share, where)) for v in videos]
            rows.append({
                "domain": domain, "share": share, "where": where, "clips": len(videos),
                "frozen_share": float(np.nanmean([h["frozen_share"] for h in held])),
                "frozen_seconds": float(np.nanmean([h["frozen_seconds"] for h in held])),
                "frozen_share_auroc": auroc([c["frozen_share"] for c in clean], [h["frozen_share"] for h in held], False),
                "frozen_motion_caught": float(np.nanmean([h["frozen_motion"] for h in held])),
            })
    return rows

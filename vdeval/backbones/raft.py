"""torchvision RAFT as a published optical-flow backbone.

Options: model "large" (default) or "small"; weights: large C_T_SKHT_V2 (default; torchvision's
best general-purpose), C_T_V1 (the original RAFT "raft-things" training, for parity with VBench's
motion metrics), C_T_V2; small C_T_V2 (default) or C_T_V1. iters: refinement steps (12).
batch_size: pairs per direction in one forward; left out, 8 on a GPU, and on a CPU as many pairs in
all as make about CPU_FORWARD_PIXELS frame pixels, 1 to CPU_FORWARD_PAIRS (4 pairs at 256x160, one at
512x320 and above: the batches measured cheapest per pair there, benchmarks/cpu_batch_sizes.py).

Protocol: RGB uint8 -> x / 127.5 - 1 in [-1, 1] (torchvision's RAFT transforms), layout N x C x H x W;
frames replicate-padded to multiples of 8 (split evenly between sides, as RAFT's InputPadder), and
the flow cropped back. Clips smaller than 128 px on the short side are first upscaled by an
integer factor (bilinear) so the 4-level correlation pyramid fits; the flow is then scaled back to
clip pixels (area resample, divided by the factor). Output per vdeval.features: "forward" (T-1, H,
W, 2) frame t -> t+1 and "backward" frame t+1 -> t, (dx, dy) in pixels at clip size.

protocol="vbench" (registered as backbone `raft_vbench`): the RAFT run of VBench's dynamic degree
(vbench/dynamic_degree.py) and EvalCrafter: the large model, raft-things weights (torchvision's
C_T_V1 is the port of the original raft-things.pth), 20 refinement iterations, frames at their own
size, replicate-padded evenly to multiples of 8 (RAFT's InputPadder, "sintel" mode), the same
[-1, 1] input. Conflicting model / weights / iters options are refused. Not VBench's: its frame
sampling (every round(fps / 8)-th frame) belongs to the metric, and clips under 128 px on the short
side, for which VBench has no rule (its RAFT fails below 64 px), are still upscaled as above. The
label names the protocol (`raft@vbench:large-C_T_V1-20it`), so a number says which it used.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vdeval.backbones import loading, weights
from vdeval.backbones.base import Backbone
from vdeval.errors import WeightsError
from vdeval.features import ClipInput
from vdeval.video.protocol import InputSpec

DEFAULT_WEIGHTS = {"large": "C_T_SKHT_V2", "small": "C_T_V2"}
MIN_SIDE = 128
GPU_BATCH = 8  # pairs per direction in one forward (forward and backward together: 16)
# On a CPU a batch pays only while the frames are small (benchmarks/cpu_batch_sizes.py: README
# "Scale and performance"): without a batch_size option a CPU forward gets about CPU_FORWARD_PIXELS
# frame pixels of pairs, whatever the directions asked, at least one pair and at most
# CPU_FORWARD_PAIRS; larger frames go a pair at a time, one direction after the other, which also
# keeps one correlation volume in memory (0.8 GB for a 720p pair) as a per-pair loop does.
CPU_FORWARD_PAIRS = 4
CPU_FORWARD_PIXELS = 4 * 256 * 160


def cpu_pairs_per_forward(height: int, width: int) -> int:
    """Pairs in one RAFT forward on a CPU without a batch_size option, for frames of this size."""
    return max(1, min(CPU_FORWARD_PAIRS, CPU_FORWARD_PIXELS // max(1, height * width)))


VBENCH_MODEL, VBENCH_WEIGHTS_TAG, VBENCH_ITERS = "large", "C_T_V1", 20
VBENCH = {"model": VBENCH_MODEL, "weights_tag": VBENCH_WEIGHTS_TAG, "iters": VBENCH_ITERS}


def pad_to_multiple(x: torch.Tensor, k: int = 8) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % k, (-w) % k
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    return (F.pad(x, pads, mode="replicate") if any(pads) else x), pads


def unpad(x: torch.Tensor, pads) -> torch.Tensor:
    l, r, t, b = pads
    h, w = x.shape[-2:]
    return x[..., t:h - b, l:w - r]


class RaftFlow(Backbone):
    name = "raft"
    version = "torchvision"
    tier = "published"
    provides = ("flow", "flow_even")
    protocol = (
        "RGB/127.5-1 in [-1, 1], N x C x H x W; short side < 128 upscaled by an integer factor (bilinear); "
        "replicate-padded to multiples of 8 (evenly), flow cropped back, scaled to clip pixels; "
        "forward t->t+1 and backward t+1->t, (dx, dy) pixels"
    )

    input_options = ("fps",)
    # frames at their own size by default, as VBench runs RAFT; max_short_side caps it
    def input_spec(self, kind: str) -> InputSpec:
        # option fps: frames sampled to about that rate first (VBench's dynamic degree samples to 8)
        fps = self.options.get("fps")
        return InputSpec(max_short_side=self.options.get("max_short_side"), fps=float(fps) if fps else None)

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # float32 forward and backward flow it returns, and per batch of pairs RAFT's all-pairs
        # correlation volume of 1/8-size maps (its pyramid adds a third) and its feature maps.
        # Declared from the architecture, not measured here (needs the weights).
        pairs = max(frames - 1, 0) if kind == "flow" else max((frames + 1) // 2 - 1, 0)
        p8 = (height // 8 + 1) * (width // 8 + 1)
        # pairs in one forward, both directions asked
        batch = self._per_forward(height, width, 2) if self._cpu_default else 2 * min(self.batch_size, max(pairs, 1))
        return pairs * height * width * 16 + batch * (p8 * p8 * 4 + 300 * height * width * 4)

    def __init__(self, device: str = "cpu", model: str = "large", weights_tag: str | None = None, iters: int | None = None,
                 batch_size: int | None = None, protocol: str = "vdeval", **options):
        if protocol == "vbench":
            asked = {"model": model, "weights_tag": weights_tag or VBENCH["weights_tag"], "iters": VBENCH["iters"] if iters is None else iters}
            bad = [f"{k}={asked[k]!r}" for k in VBENCH if asked[k] != VBENCH[k]]
            if bad:
                raise WeightsError(f"raft: the vbench protocol fixes model large, weights C_T_V1, 20 iters; got {', '.join(bad)}",
                                   "leave those options out, or use protocol vdeval")
            options["protocol"] = protocol
            model, weights_tag, iters = VBENCH_MODEL, VBENCH_WEIGHTS_TAG, VBENCH_ITERS
        elif protocol != "vdeval":
            raise WeightsError(f"raft: unknown protocol {protocol!r}", "use vdeval or vbench")
        iters = 12 if iters is None else iters
        tag = weights_tag or DEFAULT_WEIGHTS.get(model)
        super().__init__(device, model=model, weights_tag=tag, iters=int(iters), **options)
        if model not in DEFAULT_WEIGHTS:
            raise WeightsError(f"raft: unknown model {model!r}", "use model: large or model: small")
        self.entry_name = f"raft-{model}-{tag}"
        if self.entry_name not in weights.ENTRIES:
            known = [n for n in weights.ENTRIES if n.startswith(f"raft-{model}-")]
            raise WeightsError(f"raft: no weights {tag!r} for the {model} model", f"known: {', '.join(known)}")
        self._path, self._sha = weights.require(self.entry_name)
        self.iters = int(iters)
        # batch_size: pairs per direction in one forward; left out, GPU_BATCH on a GPU and on a
        # CPU cpu_pairs_per_forward in all (set per clip in compute, by its frame size)
        self._cpu_default = batch_size is None and str(device) == "cpu"
        self.batch_size = int(batch_size) if batch_size is not None else (CPU_FORWARD_PAIRS if self._cpu_default else GPU_BATCH)

    network = ("model",)

    def _per_forward(self, height: int, width: int, directions: int) -> int:
        """Pairs in one forward (all directions together)."""
        return cpu_pairs_per_forward(height, width) if self._cpu_default else self.batch_size * directions

    def check_weights(self) -> None:
        weights.check_format(self._path, "raft", self.entry_name, ("torch",))

    def build(self) -> None:
        from torchvision.models.optical_flow import raft_large, raft_small

        path, model = self._path, self.options["model"]
        with loading.made_on_meta():  # one copy of the weights while loading (loading.py)
            net = (raft_large if model == "large" else raft_small)(weights=None, progress=False)
        try:
            loading.load_into(net, torch.load(path, map_location="cpu", weights_only=True))
        except Exception as e:
            raise WeightsError(f"raft: {path} does not load into torchvision raft_{model}: {str(e).splitlines()[0][:200]}",
                               f"reinstall with `vdeval weights install {self.entry_name} FILE`") from None
        self.model = net.eval().to(self.device)

    def weights_sha256(self) -> dict[str, str]:
        return {weights.ENTRIES[self.entry_name].filename: self._sha}

    def label(self) -> str:
        o = self.options
        if o.get("protocol") == "vbench":
            return f"raft@vbench:{o['model']}-{o['weights_tag']}-{o['iters']}it"
        return f"raft@{o['model']}-{o['weights_tag']}"

    @torch.no_grad()
    def pair_flow(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Flow a -> b for batches of [-1, 1] images (N, 3, H, W); (N, 2, H, W) in input pixels."""
        h, w = a.shape[-2:]
        s = max(1, math.ceil(MIN_SIDE / min(h, w)))
        if s > 1:
            a = F.interpolate(a, scale_factor=s, mode="bilinear", align_corners=False)
            b = F.interpolate(b, scale_factor=s, mode="bilinear", align_corners=False)
        a, pads = pad_to_multiple(a)
        b, _ = pad_to_multiple(b)
        flow = unpad(self.model(a.to(self.device), b.to(self.device), num_flow_updates=self.iters)[-1], pads).cpu()
        if s > 1:
            flow = F.interpolate(flow, size=(h, w), mode="area") / s
        return flow

    flow_directions = True

    def compute(self, kind: str, clips: list[ClipInput],
                directions: tuple[str, ...] = ("forward", "backward")) -> list[dict[str, np.ndarray]]:
        """Flow in `directions` only (forward: frame t -> t+1, backward: t+1 -> t): a metric that
        reads forward flow alone costs one RAFT pass per pair, not two."""
        self.check_kind(kind)
        step = 2 if kind == "flow_even" else 1  # flow_even: the same protocol on frames 0, 2, 4, ...

        def to_input(frames):
            return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0

        out = []
        for c in clips:
            frames = c.frames[::step]
            t, h, w = frames.shape[:3]
            arrays: dict[str, np.ndarray] = {d: np.zeros((max(t - 1, 0), h, w, 2), np.float32) for d in ("forward", "backward") if d in directions}
            per_forward = self._per_forward(h, w, len(arrays))
            chunk = max(1, per_forward // max(1, len(arrays)))  # pairs per direction in a chunk of frames
            for i in range(0, t - 1, chunk):  # chunks of pairs: long clips stay in memory
                x = to_input(frames[i:min(i + chunk, t - 1) + 1])
                k = len(x) - 1
                # the asked directions' pairs, forward (x[t], x[t+1]) then backward (swapped), in
                # forwards of per_forward pairs
                firsts = torch.cat([x[:-1] if d == "forward" else x[1:] for d in arrays])
                seconds = torch.cat([x[1:] if d == "forward" else x[:-1] for d in arrays])
                flows = torch.cat([self.pair_flow(firsts[j:j + per_forward], seconds[j:j + per_forward])
                                   for j in range(0, len(firsts), per_forward)]).permute(0, 2, 3, 1).numpy()
                for j, a in enumerate(arrays.values()):
                    a[i:i + k] = flows[j * k:(j + 1) * k]
            out.append(arrays)
        return out


class RaftVBench(RaftFlow):
    """RAFT as VBench's dynamic degree and EvalCrafter run it: large, raft-things (C_T_V1), 20 iterations."""

    name = "raft_vbench"
    protocol = RaftFlow.protocol + "; VBench protocol: large model, C_T_V1 (raft-things) weights, 20 iterations"

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options):
        options.pop("protocol", None)
        super().__init__(device, batch_size=batch_size, protocol="vbench", **options)

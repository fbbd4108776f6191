"""vdeval against VBench's per-dimension loops (and EvalCrafter-style flow metrics), same networks.

Dimensions (VBench's, as vdeval runs them in suites/vbench.yaml): subject consistency (DINO ViT-B/16,
VBench protocol), background consistency (CLIP ViT-B/32), dynamic degree (RAFT large, 20 iterations,
frames sampled to ~8 fps), motion smoothness (AMT-S on even frames), temporal flickering (pixels),
imaging quality (MUSIQ). Every network is at full depth, with random weights made once, saved in
the released file formats and installed into one weights folder that both sides load.

Sides, each in a fresh process, interleaved, `--rounds` rounds (the fastest round counts):

  peer     VBench's loops as its code runs them (vbench/<dimension>.py): each dimension builds its
           network, decodes every clip again (PyAV to RGB at source size, as its load_video), applies
           its own transform and runs the network clip by clip: DINO, MUSIQ and RAFT one frame or pair
           at a time under no_grad, CLIP on all frames of a clip at once *with* autograd (VBench's
           background_consistency has no no_grad), AMT-S one even pair at a time; temporal flickering
           decodes and differences the frames. The network is freed before the next dimension.
  vdeval   vdeval.evaluate on the same files with the same six dimensions (one decode per clip and
           backbone input spec, batched forwards, one network held at a time).
  limit    one decode per clip plus each unique forward the dimensions need, alone, batched
           (RAFT and MUSIQ at the CPU batch sizes measured cheapest, benchmarks/cpu_batch_sizes.py),
           without autograd (DINO and CLIP on every frame, RAFT forward on the 8 fps pairs, AMT-S on
           the even pairs, MUSIQ on every frame; in the shared suite RAFT also on every pair both
           ways, the flow vdeval's three flow metrics read); no metric maths, no caching, no results.

`shared:` adds EvalCrafter's three flow metrics (metrics/RAFT/optical_flow_scores.py), each
recomputing its flow as that code does: flow score and motion AC-score each run RAFT (raft-things,
20 iterations) forward on every consecutive pair at source size; warping error halves each frame
(bilinear) and runs RAFT forward and backward on every pair at that size, then its occlusion test
and masked squared error (its frames enter RAFT in [0, 1] where the network expects [0, 255]:
kept, it moves the flow, not the cost). vdeval adds warping_error, motion_blur and motion_jitter
(the flow readers it has), all three reading one forward + backward RAFT flow of all pairs at
source size, computed once: its warping error works at full size, four times the pixels of
EvalCrafter's, so pair for pair vdeval's flicker flow costs more than the peer's.

Reported: CPU and wall seconds per dimension (cpu/wall; CPU of all threads of the process, after imports) and
in total, peak RSS of each process, and the last lines

  total: peer/vdeval cpu X.XX wall Y.YY rss Z.ZZ limit/vdeval cpu W.WW
  shared: peer/vdeval cpu X.XX wall Y.YY rss Z.ZZ limit/vdeval cpu W.WW

The load average is printed beside every side: on a shared machine CPU time moves with it.

    python benchmarks/bench_vs_vbench.py            # 256x160, 512x320, 720p, 16 frames, 2 rounds (long)
    python benchmarks/bench_vs_vbench.py --quick    # two 256x160 clips of 8 frames, 1 round
    python benchmarks/bench_vs_vbench.py --shared-rounds 1   # the shared suite in the first round only
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared/data/natural beside the checkout (a worktree sits one level deeper)
NATURAL = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.exists()), ROOT.parent / "shared") / "data" / "natural"
DIMS = ["subject_consistency", "background_consistency", "dynamic_degree", "motion_smoothness",
        "temporal_flickering", "imaging_quality"]
VDEVAL_METRICS = {
    "subject_consistency": {"name": "identity_drift", "backbone": "dino_vbench", "params": {"aggregate": "pairs"}},
    "background_consistency": {"name": "background_consistency", "backbone": "clip"},
    "dynamic_degree": {"name": "frozen_motion", "backbone": "raft_vbench"},
    "motion_smoothness": {"name": "motion_smoothness", "backbone": "amt"},
    "temporal_flickering": {"name": "frame_difference"},
    "imaging_quality": {"name": "imaging_quality", "backbone": "musiq"},
}
VDEVAL_FLOW = [{"name": n, "backbone": "raft_vbench"} for n in ("warping_error", "motion_blur", "motion_jitter")]


# ---- set-up (once, in the parent) --------------------------------------------------------------

def make_clips(folder: Path, quick: bool) -> list[Path]:
    """Clips cut from Big Buck Bunny (1280x720, 25 fps) at several sizes and start frames."""
    import av
    import numpy as np

    frames_n = 8 if quick else 16
    sizes = [(256, 160)] if quick else [(256, 160), (512, 320), (1280, 720)]
    per_size = 2 if quick else 1
    with av.open(str(NATURAL / "bigbuckbunny.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    out = []
    for w, h in sizes:
        for k in range(per_size):
            start = 20 + 40 * k
            p = folder / f"bbb_{w}x{h}_{k}.mp4"
            with av.open(str(p), "w") as o:
                st = o.add_stream("libx264", rate=25)
                st.width, st.height, st.pix_fmt = w, h, "yuv420p"
                st.options = {"crf": "16", "preset": "fast"}
                for f in frames[start:start + frames_n]:
                    vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24").reformat(w, h, interpolation="BICUBIC")
                    for pkt in st.encode(vf):
                        o.mux(pkt)
                for pkt in st.encode():
                    o.mux(pkt)
            out.append(p)
    return out


def make_weights(folder: Path) -> None:
    """Random full-depth networks saved as their released files and installed (custom) once."""
    import open_clip
    import timm
    import torch
    from safetensors.torch import save_file
    from torchvision.models.optical_flow import raft_large

    from vdeval.backbones import weights
    from vdeval.backbones.amt import AMTS
    from vdeval.backbones.musiq import MusiqNet

    os.environ[weights.ENV] = str(folder / "installed")
    torch.manual_seed(0)
    files = {}
    m = timm.create_model("vit_base_patch16_224.dino", pretrained=False, num_classes=0)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(folder / "dino.safetensors"))
    files["dino-vitb16"] = folder / "dino.safetensors"
    torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), folder / "clip.bin")
    files["clip-vit-b-32-laion2b"] = folder / "clip.bin"
    torch.save(raft_large(weights=None).state_dict(), folder / "raft.pth")
    files["raft-large-C_T_V1"] = folder / "raft.pth"
    torch.save({"state_dict": AMTS().state_dict()}, folder / "amt.pth")
    files["amt-s"] = folder / "amt.pth"
    torch.save(MusiqNet().state_dict(), folder / "musiq.pth")
    files["musiq-spaq"] = folder / "musiq.pth"
    for name, f in files.items():
        weights.install(name, f, custom=True)


# ---- workers (each in a fresh process) ---------------------------------------------------------

def decode(path: Path):
    import av
    import numpy as np

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate)
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(s)]), fps


class Timer:
    def __init__(self):
        self.parts: dict[str, list[float]] = {}

    def run(self, name, fn):
        c, w = time.process_time(), time.perf_counter()
        out = fn()
        got = self.parts.setdefault(name, [0.0, 0.0])
        got[0] += time.process_time() - c
        got[1] += time.perf_counter() - w
        return out


def _raft_pair(model, a, b):
    """RAFT as VBench's dynamic degree calls it: [-1, 1], padded to multiples of 8, 20 iterations."""
    from vdeval.backbones.raft import pad_to_multiple, unpad

    a, pads = pad_to_multiple(a)
    b, _ = pad_to_multiple(b)
    return unpad(model(a, b, num_flow_updates=20)[-1], pads)


def _pyramid_any_size(self, fmap1, fmap2):
    """torchvision's CorrBlock.build_pyramid without its size check: the RAFT EvalCrafter runs
    (princeton-vl) pools the correlation volume at any size, so the half-size frames of a 256x160
    clip (128x80) run there, same cost, though its 1-row coarsest level makes NaNs; torchvision
    refuses maps under 16 px."""
    import torch.nn.functional as F

    corr = self._compute_corr_volume(fmap1, fmap2)
    n, h, w, c, _, _ = corr.shape
    corr = corr.reshape(n * h * w, c, h, w)
    self.corr_pyramid = [corr]
    for _ in range(self.num_levels - 1):
        corr = F.avg_pool2d(corr, kernel_size=2, stride=2)
        self.corr_pyramid.append(corr)


def peer(clips: list[Path], shared: bool) -> dict:
    """VBench's loops (and EvalCrafter's per-metric flow), one dimension after another."""
    import gc
    import types

    import numpy as np
    import torch
    import torch.nn.functional as F

    from vdeval import registry
    from vdeval.backbones import loading

    # networks built as VBench's loaders build them (clip.load's build_model, torch.hub's DINO,
    # pyiqa's MUSIQ, RAFT and AMT: the module with its own init, then load_state_dict copying the
    # checkpoint in), not as vdeval does (on the meta device, the checkpoint's tensors assigned)
    loading.ASSIGN = False
    t = Timer()
    scores: dict[str, list[float]] = {}

    def to_raft(f):
        return torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1)[None].float() / 127.5 - 1.0

    def subject_consistency():
        from vdeval.backbones.dino import vbench_transform

        b = registry.resolve("backbone", "dino_vbench")()
        for p in clips:
            images = vbench_transform(decode(p)[0])
            sims, first, prev = [], None, None
            for i in range(len(images)):
                with torch.no_grad():
                    f = F.normalize(b.forward_whole_frame(images[i:i + 1]), dim=-1, p=2)
                if i == 0:
                    first = f
                else:
                    sims.append(float((max(0.0, F.cosine_similarity(prev, f).item()) + max(0.0, F.cosine_similarity(first, f).item())) / 2))
                prev = f
            scores.setdefault("subject_consistency", []).append(float(np.mean(sims)))

    def background_consistency():
        b = registry.resolve("backbone", "clip")()
        for p in clips:
            feats = F.normalize(b.model.encode_image(b.preprocess(decode(p)[0])), dim=-1, p=2)  # autograd on, as VBench
            sims = [max(0.0, F.cosine_similarity(feats[i - 1:i], feats[i:i + 1]).item()) for i in range(1, len(feats))]
            scores.setdefault("background_consistency", []).append(float(np.mean(sims)))

    def flow_loop(name: str, interval_of):
        """Forward RAFT on consecutive (sampled) pairs, one pair at a time: VBench's dynamic degree
        (every round(fps / 8)-th frame) and EvalCrafter's flow score and motion AC-score (every frame)."""
        b = registry.resolve("backbone", "raft_vbench")()
        for p in clips:
            frames, fps = decode(p)
            frames = frames[::interval_of(fps)]
            mags = []
            with torch.no_grad():
                for a, c in zip(frames[:-1], frames[1:]):
                    mags.append(float(_raft_pair(b.model, to_raft(a), to_raft(c)).norm(dim=1).mean()))
            scores.setdefault(name, []).append(float(np.mean(mags)))

    def warping_error():
        """EvalCrafter's compute_video_warping_error: frames / 255, halved (bilinear), RAFT forward
        and backward per pair (its RAFT rescales as if from [0, 255]), occlusion from the
        forward-backward test and the flow's motion boundaries, masked squared error."""
        b = registry.resolve("backbone", "raft_vbench")()
        b.model.corr_block.build_pyramid = types.MethodType(_pyramid_any_size, b.model.corr_block)

        def warp(x, flow):  # x sampled at p + flow(p), bilinear, borders clamped (as Resample2d)
            h, w = x.shape[-2:]
            ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
            gx = (xs + flow[:, 0]) / max(w - 1, 1) * 2 - 1
            gy = (ys + flow[:, 1]) / max(h - 1, 1) * 2 - 1
            return F.grid_sample(x, torch.stack([gx, gy], -1), align_corners=True, padding_mode="border")

        def sq(f):
            return (f ** 2).sum(1)

        for p in clips:
            frames = torch.from_numpy(decode(p)[0]).permute(0, 3, 1, 2).float() / 255.0
            err = 0.0
            with torch.no_grad():
                for i in range(len(frames) - 1):
                    img1, img2 = (F.interpolate(f[None], scale_factor=0.5, mode="bilinear", align_corners=False)
                                  for f in (frames[i], frames[i + 1]))
                    fw = _raft_pair(b.model, 2 * (img1 / 255.0) - 1, 2 * (img2 / 255.0) - 1)
                    bw = _raft_pair(b.model, 2 * (img2 / 255.0) - 1, 2 * (img1 / 255.0) - 1)
                    bw_w, warped = warp(bw, fw), warp(img2, fw)
                    occluded = sq(bw_w + fw) > 0.01 * (sq(bw_w) + sq(fw)) + 0.5
                    du, dv = torch.zeros_like(fw), torch.zeros_like(fw)
                    du[..., :, :-1] = fw[..., :, :-1] - fw[..., :, 1:]
                    dv[..., :-1, :] = fw[..., :-1, :] - fw[..., 1:, :]
                    occluded |= sq(du) + sq(dv) > 0.01 * sq(fw) + 0.002
                    noc = (~occluded).float()
                    n = noc.sum() if noc.sum() > 0 else torch.tensor(float(warped.numel()))
                    err += float((((warped - img1) * noc) ** 2).sum() / n)
            scores.setdefault("warping_error", []).append(err / (len(frames) - 1))

    def motion_smoothness():
        from vdeval.backbones.amt import interpolate_midframes

        b = registry.resolve("backbone", "amt")()
        for p in clips:
            frames = decode(p)[0]
            mids = interpolate_midframes(b.model, frames, batch=1)  # VBench: one even pair at a time
            diff = np.abs(mids.astype(np.float64) - frames[1:2 * len(mids):2]).mean()
            scores.setdefault("motion_smoothness", []).append(float((255 - diff) / 255))

    def temporal_flickering():
        import cv2

        for p in clips:
            frames = decode(p)[0]
            d = [float(np.mean(cv2.absdiff(frames[i], frames[i + 1]))) for i in range(len(frames) - 1)]
            scores.setdefault("temporal_flickering", []).append(float((255 - np.mean(d)) / 255))

    def imaging_quality():
        from vdeval.backbones.musiq import vbench_longer

        b = registry.resolve("backbone", "musiq")()
        for p in clips:
            images = vbench_longer(decode(p)[0])
            with torch.no_grad():  # pyiqa's inference model
                s = [float(b.net(images[i:i + 1])) for i in range(len(images))]
            scores.setdefault("imaging_quality", []).append(float(np.mean(s)) / 100)

    loops = {"subject_consistency": subject_consistency, "background_consistency": background_consistency,
             "dynamic_degree": lambda: flow_loop("dynamic_degree", lambda fps: max(1, round(fps / 8))),
             "motion_smoothness": motion_smoothness, "temporal_flickering": temporal_flickering,
             "imaging_quality": imaging_quality}
    if shared:
        loops.update({"flow_score": lambda: flow_loop("flow_score", lambda fps: 1),
                      "motion_ac_score": lambda: flow_loop("motion_ac_score", lambda fps: 1),
                      "warping_error": warping_error})
    for name, fn in loops.items():
        t.run(name, fn)
        gc.collect()
    return {"parts": t.parts, "scores": scores}


def vdeval_side(clips: list[Path], shared: bool) -> dict:
    import vdeval
    from vdeval.features import ClipFeatures
    from vdeval.run import featurize as fz

    metrics = list(VDEVAL_METRICS.values()) + (VDEVAL_FLOW if shared else [])
    t = Timer()
    compute, decoded = fz._compute, ClipFeatures.decoded  # timed per backbone, and the decodes
    fz._compute = lambda bb, req, inputs: t.run(bb.name, lambda: compute(bb, req, inputs))
    ClipFeatures.decoded = lambda self, spec: t.run("decode", lambda: decoded(self, spec))
    df = t.run("evaluate", lambda: vdeval.evaluate([str(p) for p in clips], metrics=metrics, device="cpu"))
    cols = [m["name"] for m in metrics]
    return {"parts": t.parts, "scores": {c: [float(x) for x in df[c]] for c in cols},
            "errors": [e for e in df["error"] if e]}


def limit(clips: list[Path], shared: bool) -> dict:
    """One decode per clip and each unique forward alone, batched, without autograd."""
    import numpy as np
    import torch

    from vdeval import registry
    from vdeval.backbones import musiq, raft
    from vdeval.backbones.amt import interpolate_midframes
    from vdeval.backbones.dino import vbench_transform
    from vdeval.backbones.musiq import vbench_longer

    t = Timer()
    decoded = [t.run("decode", lambda p=p: decode(p)) for p in clips]
    with torch.no_grad():
        b = registry.resolve("backbone", "dino_vbench")()
        for f, _ in decoded:
            t.run("dino", lambda f=f: b.forward_whole_frame(vbench_transform(f)))
        b = registry.resolve("backbone", "clip")()
        for f, _ in decoded:
            t.run("clip", lambda f=f: b.model.encode_image(b.preprocess(f)))
        b = registry.resolve("backbone", "raft_vbench")()
        for f, fps in decoded:
            k = raft.cpu_pairs_per_forward(*f.shape[1:3])  # pairs per forward: the batch measured cheapest on a CPU
            step = max(1, round(fps / 8))
            x = torch.from_numpy(np.ascontiguousarray(f)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            a, c = x[::step][:-1], x[::step][1:]  # dynamic degree's pairs, forward
            if shared:  # every pair both ways; dynamic degree's pairs are among them only at step 1
                a, c = (torch.cat([x[:-1], x[1:]] + [a] * (step > 1)), torch.cat([x[1:], x[:-1]] + [c] * (step > 1)))
            for i in range(0, len(a), k):
                t.run("raft", lambda a=a[i:i + k], c=c[i:i + k]: _raft_pair(b.model, a, c))
        b = registry.resolve("backbone", "amt")()
        for f, _ in decoded:
            t.run("amt", lambda f=f: interpolate_midframes(b.model, f))
        b, n = registry.resolve("backbone", "musiq")(), musiq.CPU_BATCH
        for f, _ in decoded:
            t.run("musiq", lambda f=f: [b.net(vbench_longer(f[i:i + n])) for i in range(0, len(f), n)])
    return {"parts": t.parts}


def worker(side: str, clips: list[Path], shared: bool) -> None:
    import numpy  # noqa: F401  imports are not timed: both sides import the same libraries
    import torch  # noqa: F401

    import vdeval  # noqa: F401
    import vdeval.backbones.amt  # noqa: F401

    c0, w0 = time.process_time(), time.perf_counter()
    out = {"peer": peer, "vdeval": vdeval_side, "limit": limit}[side](clips, shared)
    out.update(cpu=time.process_time() - c0, wall=time.perf_counter() - w0,
               rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print("RESULT " + json.dumps(out))


# ---- driver ------------------------------------------------------------------------------------

def spawn(side: str, clips: list[Path], shared: bool, env: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", side, *(["--shared"] if shared else []), "--clips", *map(str, clips)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    if r.returncode or not line:
        raise SystemExit(f"{side} failed:\n{r.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--no-shared", action="store_true", help="skip the suite with repeated flow work")
    ap.add_argument("--shared-rounds", type=int, default=None, help="run the shared suite in the first N rounds only")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json", help="append every side's result (parts, scores, cpu, wall, rss, load) to this file")
    ap.add_argument("--worker", choices=("peer", "vdeval", "limit"), help=argparse.SUPPRESS)
    ap.add_argument("--shared", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--clips", nargs="*", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.clips, a.shared)
    rounds = a.rounds or (1 if a.quick else 2)
    shared_rounds = 0 if a.no_shared else (rounds if a.shared_rounds is None else a.shared_rounds)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "clips").mkdir()
        clips = make_clips(tmp / "clips", a.quick)
        make_weights(tmp)
        env = {**os.environ, "VDEVAL_WEIGHTS_DIR": str(tmp / "installed"), "PYTHONPATH": str(ROOT)}
        from vdeval.backbones import weights

        env[weights.ENV] = str(tmp / "installed")
        print(f"clips: {', '.join(p.name for p in clips)}; load average {os.getloadavg()[0]:.1f}", flush=True)
        best: dict[tuple, dict] = {}
        for r in range(rounds):
            for shared in (False, True)[:1 + (r < shared_rounds)]:
                for side in ("peer", "vdeval", "limit"):
                    load0 = os.getloadavg()[0]
                    got = spawn(side, clips, shared, env, a.timeout)
                    k = (side, shared)
                    if k not in best or got["cpu"] < best[k]["cpu"]:
                        best[k] = got
                    print(f"round {r + 1} {'shared' if shared else 'vbench'} {side:7s} load {load0:.1f}-{os.getloadavg()[0]:.1f}  "
                          f"cpu {got['cpu']:7.1f} s  "
                          f"wall {got['wall']:7.1f} s  rss {got['rss'] / 2**30:5.2f} GiB  "
                          + "  ".join(f"{n} {v[0]:.1f}/{v[1]:.1f}" for n, v in got["parts"].items()), flush=True)
                    if a.json:
                        with open(a.json, "a") as f:
                            f.write(json.dumps({"round": r + 1, "side": side, "shared": shared, "load": [load0, os.getloadavg()[0]],
                                                "clips": [p.name for p in clips], **got}) + "\n")
        p, v, lim = best[("peer", False)], best[("vdeval", False)], best[("limit", False)]
        print("scores (peer | vdeval):")
        for dim, m in VDEVAL_METRICS.items():
            print(f"  {dim:24s} {p['scores'].get(dim)} | {v['scores'].get(m['name'])}")
        print(f"load average {os.getloadavg()[0]:.1f}")
        print(f"total: peer/vdeval cpu {p['cpu'] / v['cpu']:.2f} wall {p['wall'] / v['wall']:.2f} "
              f"rss {p['rss'] / v['rss']:.2f} limit/vdeval cpu {lim['cpu'] / v['cpu']:.2f}")
        if shared_rounds:
            ps, vs, ls = best[("peer", True)], best[("vdeval", True)], best[("limit", True)]
            print(f"shared: peer/vdeval cpu {ps['cpu'] / vs['cpu']:.2f} wall {ps['wall'] / vs['wall']:.2f} "
                  f"rss {ps['rss'] / vs['rss']:.2f} limit/vdeval cpu {ls['cpu'] / vs['cpu']:.2f}")


if __name__ == "__main__":
    main()

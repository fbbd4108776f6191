"""CPU time per RAFT pair, AMT-S pair and MUSIQ frame against batch size, on this CPU.

Full-depth networks with random weights (timing does not depend on the weights): RAFT large at 20
iterations (VBench's protocol, backbone raft_vbench), AMT-S (VBench's motion smoothness: midpoints
of even frames) and MUSIQ (14 blocks), on random frames of
256x160 and 512x320. Torch threads as the runner leaves them (torch's default; the runner does not
set them). Each batch size runs the same number of pairs / frames (--items), in --repeats passes
over the batch sizes, alternately ascending and descending (so drift in the load or a warm-up
favours none); the lowest CPU time per item over the passes counts. One untimed warm-up forward
at batch 1 first. CPU time is the process's (all threads), wall beside it. Prints, per network and
size, CPU s per item and its ratio to the smallest batch; the load average before and after.

    python benchmarks/cpu_batch_sizes.py                       # both networks, both sizes
    python benchmarks/cpu_batch_sizes.py --net raft --size 256x160 --batches 1 2 4 8 --items 8 --repeats 1
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def raft_runner():
    from torchvision.models.optical_flow import raft_large

    from vdeval.backbones.raft import VBENCH_ITERS, pad_to_multiple, unpad

    torch.manual_seed(0)
    net = raft_large(weights=None, progress=False).eval()

    def run(frames: np.ndarray) -> None:  # frames (b + 1, H, W, 3): b forward pairs in one batch
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        a, pads = pad_to_multiple(x[:-1])
        b, _ = pad_to_multiple(x[1:])
        unpad(net(a, b, num_flow_updates=VBENCH_ITERS)[-1], pads)

    return run, 1  # frames needed beyond the batch


def amt_runner():
    from vdeval.backbones.amt import AMTS, interpolate_midframes

    torch.manual_seed(0)
    net = AMTS().eval()

    def run(frames: np.ndarray) -> None:  # frames (2b + 1, H, W, 3): b even pairs in one batch
        interpolate_midframes(net, frames, batch=len(frames) // 2)

    return run, 1


def musiq_runner():
    from vdeval.backbones.musiq import MusiqNet, vbench_longer

    torch.manual_seed(0)
    net = MusiqNet().eval()

    def run(frames: np.ndarray) -> None:
        net(vbench_longer(frames))

    return run, 0


def measure(net: str, size: tuple[int, int], batches: list[int], items: int, repeats: int) -> None:
    run, extra = {"raft": raft_runner, "musiq": musiq_runner, "amt": amt_runner}[net]()
    w, h = size
    rng = np.random.default_rng(0)
    per = 2 if net == "amt" else 1  # frames per item: AMT-S interpolates between even frames
    frames = rng.integers(0, 256, (max(batches) * per + extra, h, w, 3), dtype=np.uint8)
    best: dict[int, tuple[float, float]] = {}
    load0 = os.getloadavg()[0]
    with torch.no_grad():
        run(frames[:per + extra])  # warm-up (allocator, oneDNN primitives)
        for r in range(repeats):
            for b in (batches if r % 2 == 0 else batches[::-1]):
                n = max(1, items // b)
                c, t = time.process_time(), time.perf_counter()
                for _ in range(n):
                    run(frames[:b * per + extra])
                got = ((time.process_time() - c) / (n * b), (time.perf_counter() - t) / (n * b))
                best[b] = min(best.get(b, got), got)
    b0 = min(batches)
    for b in sorted(best):
        cpu, wall = best[b]
        print(f"{net:5s} {w}x{h} batch {b:2d}: cpu {cpu:6.3f} s/item  wall {wall:6.3f} s/item  "
              f"cpu/batch{b0} {cpu / best[b0][0]:4.2f}", flush=True)
    print(f"{net:5s} {w}x{h}: {items} items per batch size, best of {repeats} passes; "
          f"load {load0:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=("raft", "musiq", "amt"), nargs="*", default=["raft", "musiq", "amt"])
    ap.add_argument("--size", nargs="*", default=["256x160", "512x320"])
    ap.add_argument("--batches", type=int, nargs="*", default=[1, 2, 4, 8, 16])
    ap.add_argument("--items", type=int, default=16, help="pairs / frames per batch size and pass")
    ap.add_argument("--repeats", type=int, default=2, help="passes over the batch sizes")
    a = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs", flush=True)
    for net in a.net:
        for s in a.size:
            measure(net, tuple(int(v) for v in s.split("x")), a.batches, a.items, a.repeats)


if __name__ == "__main__":
    main()

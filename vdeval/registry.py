"""Named, lazily imported generators, backbones and metrics, with "did you mean" on typos, and the
plugins that other packages add through entry points.

Entries are "module:attribute" strings so that listing names never imports torch models. Three
sources, one namespace per kind:
  - vdeval's own (the tables below);
  - installed plugins: entry points in the groups `vdeval.metrics`, `vdeval.backbones` and
    `vdeval.generators` (e.g. in a plugin's pyproject.toml:
    `[project.entry-points."vdeval.metrics"] my_metric = "my_pkg.metrics:MyMetric"`);
  - `register(kind, name, target)` at run time (notebooks, tests).
Names are checked when they are registered: lower-case identifiers (they appear in suites, result
columns and folder names), never one of vdeval's own names, never registered twice; a bad one is
a PluginError naming the package that registered it.

`names(kind)` lists what can load here: an entry whose optional library is missing (a backbone
needing open_clip, a plugin whose entry point needs an extra that is not installed) is left out,
as setuptools' `EntryPoint.require()` would refuse it; `unavailable(kind)` gives each left-out
name with the reason, and looking one up raises that reason with the install command.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass

from vdeval.errors import UnknownNameError, VdevalError, closest  # noqa: F401  (closest: re-exported)

GENERATORS = {
    "world": "vdeval.generators.world:WorldGenerator",
    "folder": "vdeval.generators.folder:FolderGenerator",
    "reference": "vdeval.generators.reference:ReferenceGenerator",
    "diffusers": "vdeval.generators.diffusers_adapter:DiffusersGenerator",
    "callable": "vdeval.generators.callable:CallableGenerator",
}

BACKBONES = {
    "dis": "vdeval.backbones.dis:DISFlow",
    "embedded": "vdeval.backbones.embedded:EmbeddedBackbone",
    "i3d": "vdeval.backbones.i3d:I3DBackbone",
    "clip": "vdeval.backbones.clip:ClipBackbone",
    "clip_vbench": "vdeval.backbones.clip_vbench:ClipVBench",
    "raft": "vdeval.backbones.raft:RaftFlow",
    "raft_vbench": "vdeval.backbones.raft:RaftVBench",
    "dino": "vdeval.backbones.dino:DinoBackbone",
    "dino_vbench": "vdeval.backbones.dino:DinoVBench",
    "niqe": "vdeval.backbones.niqe:NiqeBackbone",
    "niqe_world": "vdeval.backbones.niqe:NiqeWorld",
    "blockiness": "vdeval.backbones.blockiness:Blockiness",
    "niqe_world_zc": "vdeval.backbones.blockiness:NiqeWorldZC",
    "musiq": "vdeval.backbones.musiq:MusiqBackbone",
    "laion_aesthetic": "vdeval.backbones.aesthetic:AestheticBackbone",
    "colorfulness": "vdeval.backbones.colorfulness:ColorfulnessBackbone",
    "amt": "vdeval.backbones.amt:AMTBackbone",
    "world_interpolator": "vdeval.backbones.world_interpolator:WorldInterpolator",
    "world_interpolator_32": "vdeval.backbones.world_interpolator:WorldInterpolatorTrainedScale",
    "pixels": "vdeval.backbones.pixels:PixelBackbone",
    "face": "vdeval.backbones.face:FaceBackbone",
    "videomae": "vdeval.backbones.videomae:VideoMAEBackbone",
}

METRICS = {
    "frame_difference": "vdeval.metrics.frame_difference:FrameDifference",
    "frame_blending": "vdeval.metrics.frame_blending:FrameBlending",
    "frame_repeats": "vdeval.metrics.frame_cadence:FrameRepeats",
    "frame_skips": "vdeval.metrics.frame_cadence:FrameSkips",
    "frozen_motion": "vdeval.metrics.frozen_motion:FrozenMotion",
    "frozen_share": "vdeval.metrics.frozen_share:FrozenShare",
    "frozen_seconds": "vdeval.metrics.frozen_share:FrozenSeconds",
    "warping_error": "vdeval.metrics.warping_error:WarpingError",
    "identity_drift": "vdeval.metrics.identity_drift:IdentityDrift",
    "reference_fidelity": "vdeval.metrics.identity_drift:ReferenceFidelity",
    "clip_score": "vdeval.metrics.prompt_alignment:ClipScoreMetric",
    "video_text_alignment": "vdeval.metrics.prompt_alignment:VideoTextAlignment",
    "prompt_drift": "vdeval.metrics.prompt_alignment:PromptDrift",
    "scene_cuts": "vdeval.metrics.scene_cuts:SceneCuts",
    "motion_jitter": "vdeval.metrics.motion_jitter:MotionJitter",
    "physical_plausibility": "vdeval.metrics.physical_plausibility:PhysicalPlausibility",
    "grounded_alignment": "vdeval.metrics.grounded_alignment:GroundedAlignment",
    "motion_smoothness": "vdeval.metrics.motion_smoothness:MotionSmoothness",
    "background_consistency": "vdeval.metrics.background_consistency:BackgroundConsistency",
    "world_background_consistency": "vdeval.metrics.background_consistency:WorldBackgroundConsistency",
    "motion_blur": "vdeval.metrics.motion_blur:MotionBlur",
    "camera_motion": "vdeval.metrics.camera_motion:CameraMotion",
    "imaging_quality": "vdeval.metrics.imaging_quality:ImagingQuality",
    "aesthetic_quality": "vdeval.metrics.aesthetic_quality:AestheticQuality",
    "fvd": "vdeval.metrics.fvd:FVD",
    "kvd": "vdeval.metrics.kvd:KVD",
    "face_identity": "vdeval.metrics.face_identity:FaceIdentity",
}

# optional libraries a built-in entry imports when it loads, and what installs each
REQUIRES = {
    "backbone": {"clip": ("open_clip",), "clip_vbench": ("open_clip",), "laion_aesthetic": ("open_clip",),
                 "dino": ("timm",), "dino_vbench": ("timm",), "face": ("dlib",)},
    "generator": {"diffusers": ("diffusers",)},
    "metric": {},
}
INSTALL = {"open_clip": "open-clip-torch", "timm": "timm", "diffusers": "diffusers", "dlib": "'vdeval[face]'"}

_TABLES = {"generator": GENERATORS, "backbone": BACKBONES, "metric": METRICS}
GROUPS = {"metric": "vdeval.metrics", "backbone": "vdeval.backbones", "generator": "vdeval.generators"}
VALID_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class PluginError(VdevalError):
    """A plugin entry that cannot be registered: a bad name, or one already taken."""


@dataclass(frozen=True)
class Entry:
    """A registered name: where it loads from, and who registered it."""

    target: object  # "module:attr", or the object itself (register() at run time)
    origin: str  # "vdeval", a plugin's distribution name, or "register()"
    missing: str | None = None  # why it cannot load here (a library or extra not installed)


_plugins: dict[str, dict[str, Entry]] | None = None  # discovered once per process, then kept
_registered: dict[str, dict[str, Entry]] = {kind: {} for kind in _TABLES}


def check_new_name(kind: str, name: str, origin: str, taken: dict[str, Entry]) -> None:
    """Refuse a name that is not a lower-case identifier, is vdeval's own, or is already taken."""
    if not isinstance(name, str) or not VALID_NAME.fullmatch(name):
        raise PluginError(f"{origin} registers {kind} {name!r}: not a valid name",
                          "use 1-64 lower-case letters, digits and '_', starting with a letter")
    if name in _TABLES[kind]:
        raise PluginError(f"{origin} registers {kind} {name!r}, which is one of vdeval's own {kind}s",
                          "give it another name, e.g. with the package's name as a prefix")
    if name in taken:
        raise PluginError(f"{origin} registers {kind} {name!r}, already registered by {taken[name].origin}",
                          "uninstall one of the two, or rename one")


def _missing_extras(ep: importlib.metadata.EntryPoint) -> str | None:
    """The extras an entry point needs (`name = mod:attr [extra]`) whose requirements are not installed."""
    dist = getattr(ep, "dist", None)
    if not ep.extras or dist is None:
        return None
    # packaging: always installed (matplotlib needs it); imported only for plugins that declare extras
    from packaging.requirements import Requirement

    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or not any(req.marker.evaluate({"extra": e}) for e in ep.extras):
            continue
        try:
            importlib.metadata.distribution(req.name)
        except importlib.metadata.PackageNotFoundError:
            return f"needs {req.name} (pip install '{dist.metadata['Name']}[{','.join(ep.extras)}]')"
    return None


def _discover() -> dict[str, dict[str, Entry]]:
    """Every installed plugin entry point, checked; read once (entry points change only on install)."""
    global _plugins
    if _plugins is None:
        found: dict[str, dict[str, Entry]] = {kind: {} for kind in _TABLES}
        for kind, group in GROUPS.items():
            for ep in importlib.metadata.entry_points(group=group):
                dist = getattr(ep, "dist", None)
                origin = f"plugin {dist.metadata['Name'] if dist is not None else ep.value}"
                check_new_name(kind, ep.name, origin, found[kind])
                found[kind][ep.name] = Entry(ep.value, origin, _missing_extras(ep))
        _plugins = found
    return _plugins


def reload_plugins() -> None:
    """Read the installed entry points (and which libraries are installed) again, after installing
    a plugin or a library in a running process."""
    global _plugins
    _plugins = None
    _builtin_entry.cache_clear()
    importlib.invalidate_caches()


def register(kind: str, name: str, target) -> None:
    """Add a generator, backbone or metric at run time: `target` is the class or "module:attr"."""
    if kind not in _TABLES:
        raise PluginError(f"unknown registry kind {kind!r}", f"one of {', '.join(_TABLES)}")
    check_new_name(kind, name, "register()", {**_discover()[kind], **_registered[kind]})
    _registered[kind][name] = Entry(target, "register()")


def unregister(kind: str, name: str) -> None:
    """Remove a name added with register()."""
    _registered[kind].pop(name, None)


def _module_missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ModuleNotFoundError, ValueError):  # a parent package that is not there
        return True


def _builtin(kind: str, name: str, target: str) -> Entry:
    return _builtin_entry(target, REQUIRES[kind].get(name, ()))


@functools.cache  # libraries do not come and go within a process (reload_plugins clears it)
def _builtin_entry(target: str, requires: tuple[str, ...]) -> Entry:
    for module in requires:
        if _module_missing(module):
            return Entry(target, "vdeval", f"needs {module} (pip install {INSTALL.get(module, module)})")
    if _module_missing(target.split(":")[0]):
        return Entry(target, "vdeval", f"module {target.split(':')[0]} is not in this install")
    return Entry(target, "vdeval")


def entries(kind: str) -> dict[str, Entry]:
    """Every name of a kind, loadable or not: vdeval's own, then plugins, then register()."""
    out = {name: _builtin(kind, name, target) for name, target in _TABLES[kind].items()}
    for name, e in {**_discover()[kind], **_registered[kind]}.items():
        # only the top-level package is looked up: finding a submodule would import its parents,
        # and listing names must not import a plugin (nor the torch it may import)
        top = e.target.split(":")[0].split(".")[0] if isinstance(e.target, str) else None
        if e.missing is None and top is not None and _module_missing(top):
            e = Entry(e.target, e.origin, f"package {top} is not installed")
        out[name] = e
    return out


def names(kind: str) -> list[str]:
    """The names of a kind that can load in this install."""
    return [name for name, e in entries(kind).items() if e.missing is None]


def unavailable(kind: str) -> dict[str, str]:
    """Names registered but not loadable here, each with the reason."""
    return {name: e.missing for name, e in entries(kind).items() if e.missing is not None}


def check_name(kind: str, name: str) -> None:
    if not isinstance(name, str):  # `kind: [world]` in a suite: a list cannot name anything
        raise UnknownNameError(f"a {kind} name must be text, got {type(name).__name__} {name!r}")
    table = entries(kind)
    if name in table and table[name].missing is not None:
        raise UnknownNameError(f"{kind} {name!r} cannot load here: {table[name].missing}")
    valid = [n for n, e in table.items() if e.missing is None]
    if name not in valid:
        guess = closest(name, valid)
        hint = f"did you mean {guess!r}?" if guess else f"valid {kind}s: {', '.join(sorted(valid))}"
        raise UnknownNameError(f"unknown {kind} {name!r}", hint)


def resolve(kind: str, name: str):
    """The class registered under `name`, imported now."""
    check_name(kind, name)
    entry = entries(kind)[name]
    if not isinstance(entry.target, str):
        return entry.target
    module, attr = entry.target.split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except Exception as e:  # a plugin's import may fail in any way: one line naming it, not a traceback
        if entry.origin == "vdeval":
            raise
        raise PluginError(f"{kind} {name!r} from {entry.origin} does not load ({type(e).__name__}: {e})",
                          f"its entry point names {entry.target!r}") from None

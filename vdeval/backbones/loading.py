"""Networks built with one copy of their weights in memory, not two.

The usual way to load a checkpoint (the module made with its random init, then
`load_state_dict` copying the loaded tensors in) holds both copies while it loads: 1.2 GB for
CLIP ViT-B/32's 600 MB, and a run's peak memory is often that moment. Here the module is made on
the meta device (shapes only, no init) and the checkpoint's tensors are assigned to it, cast to
the dtypes the module declares, so the numbers are those of the usual way (tests/backbones/
test_loading.py). Key and shape checks are load_state_dict's own (strict).

`ASSIGN = False` restores the usual way: benchmarks set it for the peers whose code loads so.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

ASSIGN = True


@contextlib.contextmanager
def made_on_meta() -> Iterator[str]:
    """Modules made inside have no storage (when ASSIGN); yields the device to pass to factories
    that move the module themselves (open_clip's create_model)."""
    if not ASSIGN:
        yield "cpu"
        return
    with torch.device("meta"):
        yield "meta"


def load_into(module: torch.nn.Module, state: dict, strict: bool = True):
    """`module.load_state_dict(state, strict)`; for a module made on the meta device, the tensors
    of `state` become its parameters and buffers (cast to the module's dtypes: the copy's casting),
    and a tensor the checkpoint lacks fails as a missing key does."""
    load = type(module).load_state_dict  # the class's: an instance may route its own here (clip.py)
    own = dict(module.state_dict(keep_vars=True))
    if not any(t.is_meta for t in own.values()):
        return load(module, state, strict=strict)
    state = {k: (v.to(own[k].dtype) if k in own and isinstance(v, torch.Tensor) and v.is_floating_point()
                 and own[k].is_floating_point() else v) for k, v in state.items()}
    out = load(module, state, strict=strict, assign=True)
    left = [n for n, t in own.items() if n not in state]
    if left:
        raise RuntimeError(f"Missing key(s) in state_dict: {', '.join(left[:5])}")
    return out


def meta_buffers(module: torch.nn.Module) -> list[str]:
    """Buffers still without storage (non-persistent ones: not in any checkpoint; the caller
    computes them as the module's __init__ does)."""
    return [n for n, b in module.named_buffers() if b.is_meta]

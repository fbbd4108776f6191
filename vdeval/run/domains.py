"""Which footage a suite scores, and so which backbone a metric uses when none is named.

The embedded backbone is trained on the shapes world: its numbers on other footage mean little.
A suite whose clips all come from the world (world and reference generators, a world real set) is
in the "world" domain and keeps the embedded defaults. Any other suite is "natural": a metric with
no backbone named uses its published backbone (`natural_backbone`: dino, clip, i3d), which must be
installed, and a metric without one asks for a backbone to be named. Naming `embedded` explicitly
still works; results then mark the backbone as shapes-world only.
"""
from __future__ import annotations

from vdeval import registry
from vdeval.errors import VdevalError, WeightsError

WORLD_GENERATOR_KINDS = ("world", "reference")


def suite_domain(generator_kinds: list[str], real_kind: str | None) -> str:
    world = all(k in WORLD_GENERATOR_KINDS for k in generator_kinds) and real_kind in (None, "world")
    return "world" if world else "natural"


def backbone_domain(name: str | None) -> str:
    if not name:
        return "any"
    return getattr(registry.resolve("backbone", name), "domain", "any")


def metric_backbone(metric_cls, named: str | None, domain: str) -> str | None:
    """The backbone `metric_cls` uses: the one named, else its default where valid for `domain`,
    else its published backbone; a clear error where it has none."""
    if named:
        return named
    default = metric_cls.default_backbone
    if domain == "world" or backbone_domain(default) != "world":
        return default
    if metric_cls.natural_backbone:
        return metric_cls.natural_backbone
    raise VdevalError(
        f"metric {metric_cls.name}: its default backbone {default!r} is trained on the shapes world only, "
        "and these clips are not world clips",
        f"name a backbone for it (`backbone: {default}` to score with the shapes-world backbone anyway)",
    )


def load_metric_backbones(metrics: dict, pool, named: dict | None = None) -> list:
    """The cards of every backbone the metrics ({label: Metric}) ask for, each checked by `pool`
    now (options, weights file, sha256 and format; the network is built at its first use), so
    missing weights stop before any work with one line naming the metric. `named` ({label: backbone or
    None}, as the user gave them): a backbone chosen here instead of the shapes-world default
    says so in the hint."""
    out = []
    for label, m in metrics.items():
        for req in m.requests():
            try:
                out.append(pool.card(req.backbone, req.options))  # weights checked, no network built: missing ones fail here
            except WeightsError as e:
                hints = [e.hint] if e.hint else []
                if named is not None and m.backbone != named.get(label):
                    hints.append(f"{m.name} uses {m.backbone} because these clips are not shapes-world clips "
                                 "(name `backbone: embedded` to use the shapes-world backbone)")
                raise WeightsError(f"metric {label}: {e.message}", "; ".join(hints) or None) from None
    return out

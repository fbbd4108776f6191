"""The procedural "shapes" world: captioned clips with exact ground truth, and corruptions of them."""
from vdeval.world.render import WorldClip, render_scene, sample_clip
from vdeval.world.scene import (
    BACKGROUNDS,
    COLORS,
    DIRECTIONS,
    MOTIONS,
    SHAPES,
    SIZES,
    SPEEDS,
    ObjectSpec,
    Scene,
    WorldSpec,
    caption_of,
    parse_caption,
    sample_scene,
    scene_from_caption,
    vocabulary,
)

__all__ = [
    "BACKGROUNDS", "COLORS", "DIRECTIONS", "MOTIONS", "SHAPES", "SIZES", "SPEEDS",
    "ObjectSpec", "Scene", "WorldSpec", "WorldClip", "caption_of", "parse_caption",
    "render_scene", "sample_clip", "sample_scene", "scene_from_caption", "vocabulary",
]

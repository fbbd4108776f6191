"""Word-level tokenizer over the world vocabulary (captions are a closed grammar, so no subwords)."""
from __future__ import annotations

import torch

from vdeval.errors import VdevalError
from vdeval.world import vocabulary

PAD, NULL = 0, 1  # NULL is the "no caption" token used for classifier-free guidance
SPECIALS = ("<pad>", "<null>")


class CaptionTokenizer:
    """Caption -> fixed-length token ids. Fixed length keeps every sample's shapes independent of its batch."""

    def __init__(self, max_length: int = 32):
        self.words = list(SPECIALS) + vocabulary()
        self.index = {w: i for i, w in enumerate(self.words)}
        self.max_length = max_length

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode(self, caption: str | None) -> list[int]:
        if caption is None:  # unconditional
            return [NULL] + [PAD] * (self.max_length - 1)
        words = caption.strip().lower().split()
        for w in words:
            if w not in self.index:
                raise VdevalError(
                    f"prompt {caption!r} contains the word {w!r}, which is not in the reference models' vocabulary",
                    "use words from vdeval.world.vocabulary(), e.g. 'a small red circle moving left slowly on a plain background'",
                )
        if not words:
            raise VdevalError("empty prompt for a reference model", "give a world caption, or None for unconditional")
        if len(words) > self.max_length:
            raise VdevalError(f"prompt has {len(words)} words, more than the {self.max_length} the model reads",
                              "shorten the prompt")
        ids = [self.index[w] for w in words]
        return ids + [PAD] * (self.max_length - len(ids))

    def __call__(self, captions: list[str | None]) -> torch.Tensor:
        return torch.tensor([self.encode(c) for c in captions], dtype=torch.long)

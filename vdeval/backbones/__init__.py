"""Feature extractors: flow (DIS, RAFT), frame/video/text embeddings (embedded, CLIP, DINO, I3D)."""

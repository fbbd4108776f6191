"""Generators: world clips, folders of videos, reference checkpoints, diffusers pipelines."""

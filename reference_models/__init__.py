"""Small text/image-to-video diffusion models trained on the shapes world (vdeval.world).

network.py   factorized space-time denoiser (per-frame conv + attention, temporal conv/attention,
             caption cross-attention); `motion_aligned=True` runs the temporal layers along the
             caption's velocity (shipped models); `temporal=False` is the flickering ablation
vae.py       frame-wise VAE of the latent model; train_vae.py trains it (resumable)
tokenizer.py word tokenizer over vdeval.world.vocabulary()
data.py      training batches (clips, captions, known-frame masks, on-screen velocities) drawn on the
             fly from the world; held-out captions
train.py     `python -m reference_models.train --config ... --out ...` (resumable, EMA)
sampling.py  t2v / i2v / continuation / long video with diffusers schedulers (ddim, ddpm, euler, dpm)
checkpoint.py  safetensors + config.json checkpoints, loading with clear errors
ship.py      copy a training checkpoint into checkpoints/ under its stage name
evaluate.py  quality against the world's ground truth
checkpoints/ the shipped checkpoints and their model card (README.md)
"""

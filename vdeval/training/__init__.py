"""vdeval inside a training loop: the Evaluator (evaluator.py: a suite every N steps on fixed
prompts and seeds), its Lightning and plain-loop / accelerate hooks (callbacks.py), and FVD / KVD
as torchmetrics classes (metrics.py: video tensors in, float64 states reduced across processes).
"""

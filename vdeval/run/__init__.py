"""`vdeval run`: the Runner (runner.py) and its command (cli.py, and validate.py for `vdeval validate`),
featurize.py (decode each clip to each backbone's input spec; memory groups; the feature cache),
domains.py (which backbone a metric uses on world or natural footage), distributed.py (torchrun
ranks), and the stages the Runner calls in order:

  prompts.py      suite -> prompts -> clip requests (what to make: prompt, seed, reference image)
  clips.py        ClipStore: clips made once and kept in the run directory (reused on resume),
                  files referenced by path and content hash, the real set; a clip that fails to
                  generate is recorded, never fatal
  featurizing.py  FeatureStage: the features every metric asks for, once per clip and backbone,
                  in memory-bounded groups (vdeval.run.featurize does the work)
  scoring.py      per-clip scores; a metric that raises on a clip gives NaN and a note for it
  summary.py      per-generator summary rows (mean and bootstrap interval, or set-level scores)
                  and the run's provenance

The audit (vdeval/audit/) uses the same featurize and score stages.
"""

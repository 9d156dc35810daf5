"""Continual and multi-task fine-tuning (docs/continual.md): continue from a run (model.from_run),
regularisers that keep what it knew (regularisers/, one file each), and forgetting measured on the
earlier tasks' eval sets. Replay and multi-task mixing are data (data/replay.py, data/multitask.py);
the chain of runs is runs/lineage.py. training/runner.py calls `start_model` and `Continual`."""

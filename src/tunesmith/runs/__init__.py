"""The run directory and everything that reads one: the foundation below training, inference,
evaluation, export, sweeps and the server. Nothing here imports from those layers."""

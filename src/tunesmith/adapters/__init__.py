"""Several adapters on one base model: load them together and switch per call, or merge them."""

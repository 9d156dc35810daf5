"""Serving what tunesmith trains: the model registry (versions, aliases, splits) and A/B reports."""

"""Serving what tunesmith trains: catalog (what a model name means), engine (batched generation
with many adapters on one base), the OpenAI wire format, metrics and security, and the model
registry (versions, aliases, splits) with A/B reports. The FastAPI app (tunesmith.server) and
the CLI only parse and call this package."""

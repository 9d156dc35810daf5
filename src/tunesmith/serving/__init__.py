"""Serving what tunesmith trains: catalog (what a model name means), engine (batched generation
with many adapters on one base), the OpenAI wire format, metrics and security. The FastAPI app
(tunesmith.server) and the CLI only parse and call this package."""

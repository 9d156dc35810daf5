"""HTTP front ends: the OpenAI-compatible inference app (app.py)."""

"""A self-hosted OpenAI fine-tuning API as a library: files (content-addressed, validated on
upload), jobs (create, list, cancel, pause, resume, events, checkpoints) on a SQL store shared
with tunesmith serve's database, and workers that train the queued jobs in child processes.
The HTTP routes (tunesmith.server.jobs_routes) and the CLI only parse and call these functions."""

"""Alembic environment: migrate the connection that tunesmith.serving.database.upgrade hands over
(no alembic.ini: the config is built in code, so the package carries its own migrations)."""

from alembic import context

connection = context.config.attributes["connection"]
# batch mode lets later revisions alter columns on SQLite, which has no ALTER COLUMN
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

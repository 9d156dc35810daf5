"""Alembic migrations of the service database (registry now; the jobs API adds its tables here)."""

"""Alembic migrations, shipped inside the package as `pickwise.migrations` (setup.py)."""

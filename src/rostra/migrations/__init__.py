"""Alembic migrations; ``rostra.migrations.runner`` applies them."""

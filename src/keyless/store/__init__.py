"""Persistence: one SQLAlchemy engine (SQLite by default, PostgreSQL for scale-out)."""

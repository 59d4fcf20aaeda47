"""The Alembic migrations create exactly the schema store/tables.py declares (on the test database)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from keyless.store.db import MIGRATIONS_DIR, Database
from keyless.store.tables import metadata
from tests.keyless_server import fresh_database_url


def _diff(url: str, target: sa.MetaData = metadata) -> list[object]:
    db = Database(url)
    try:
        db.migrate()
        db.migrate()  # idempotent: a second start changes nothing
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, target))
    finally:
        db.dispose()


def test_migrations_match_tables_on_sqlite(tmp_path: Path) -> None:
    assert _diff(f"sqlite:///{tmp_path / 'schema.db'}") == []


def test_migrations_match_tables_on_the_test_database(tmp_path: Path) -> None:
    with fresh_database_url() as url:
        assert _diff(url or f"sqlite:///{tmp_path / 'test.db'}") == []


def test_every_head_is_applied(tmp_path: Path) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = set(ScriptDirectory.from_config(cfg).get_heads())
    db = Database(f"sqlite:///{tmp_path / 'heads.db'}")
    try:
        db.migrate()
        with db.engine.connect() as conn:
            applied = {row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))}
    finally:
        db.dispose()
    assert applied == heads


def test_the_comparison_sees_drift(tmp_path: Path) -> None:
    """The check above can fail: a column or table the migrations lack is reported."""
    drifted = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    sa.Table("not_migrated", drifted, sa.Column("id", sa.Integer, primary_key=True))
    drifted.tables["resources"].append_column(sa.Column("not_migrated", sa.Text, nullable=True))
    diff = _diff(f"sqlite:///{tmp_path / 'drift.db'}", drifted)
    kinds = sorted(d[0] for d in diff if isinstance(d, tuple))
    assert kinds == ["add_column", "add_table"]

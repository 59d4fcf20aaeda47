"""Key Vault: global vault names, keys and secrets with their versions, and background leases

Revision ID: 0006
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_vaults",
        sa.Column("name", sa.String(length=24), nullable=False),
        sa.Column("resource_key", sa.String(length=1024), nullable=False),
        sa.Column("resource_id", sa.String(length=1024), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("deleted_at", sa.Float(), nullable=True),
        sa.Column("scheduled_purge_at", sa.Float(), nullable=True),
        sa.Column("deleted_document", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_key_vaults")),
    )
    op.create_table(
        "kv_objects",
        sa.Column("vault", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name_key", sa.String(length=127), nullable=False),
        sa.Column("name", sa.String(length=127), nullable=False),
        sa.Column("latest_version", sa.String(length=32), nullable=False),
        sa.Column("deleted_at", sa.Float(), nullable=True),
        sa.Column("scheduled_purge_at", sa.Float(), nullable=True),
        sa.Column("rotation_policy", sa.Text(), nullable=True),
        sa.Column("next_rotation_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("vault", "kind", "name_key", name=op.f("pk_kv_objects")),
    )
    op.create_index(op.f("ix_kv_objects_next_rotation_at"), "kv_objects", ["next_rotation_at"])
    op.create_table(
        "kv_versions",
        sa.Column("vault", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name_key", sa.String(length=127), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("vault", "kind", "name_key", "version", name=op.f("pk_kv_versions")),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("kv_versions")
    op.drop_index(op.f("ix_kv_objects_next_rotation_at"), table_name="kv_objects")
    op.drop_table("kv_objects")
    op.drop_table("key_vaults")

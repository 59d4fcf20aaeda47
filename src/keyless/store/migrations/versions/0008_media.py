"""Media Services: accounts' names and account keys

Revision ID: 0008
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_accounts",
        sa.Column("resource_key", sa.String(length=1024), nullable=False),
        sa.Column("resource_id", sa.String(length=1024), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=24), nullable=False),
        sa.Column("key_type", sa.String(length=16), nullable=False),
        sa.Column("account_key", sa.Text(), nullable=False),
        sa.Column("wrapping_key_id", sa.String(length=512), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("key_status", sa.String(length=16), nullable=False),
        sa.Column("key_status_reason", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("resource_key", name=op.f("pk_media_accounts")),
        sa.UniqueConstraint("location", "name", name=op.f("uq_media_accounts_location_name")),
    )


def downgrade() -> None:
    op.drop_table("media_accounts")

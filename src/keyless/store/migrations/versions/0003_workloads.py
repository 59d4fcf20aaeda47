"""workload host tokens

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workload_host_tokens",
        sa.Column("resource_key", sa.String(length=1024), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("sealed_token", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("resource_key", name=op.f("pk_workload_host_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_workload_host_tokens_token_sha256")),
    )


def downgrade() -> None:
    op.drop_table("workload_host_tokens")

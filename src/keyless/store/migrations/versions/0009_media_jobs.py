"""Media Services: the job queue

Revision ID: 0009
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_jobs",
        sa.Column("job_key", sa.String(length=1024), nullable=False),
        sa.Column("account_key", sa.String(length=1024), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("work", sa.Text(), nullable=False),
        sa.Column("lease_holder", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("job_key", name=op.f("pk_media_jobs")),
    )
    op.create_index("ix_media_jobs_claim", "media_jobs", ["state", "priority", "created_at"])
    op.create_index("ix_media_jobs_changed", "media_jobs", ["changed_at"])


def downgrade() -> None:
    op.drop_index("ix_media_jobs_changed", table_name="media_jobs")
    op.drop_index("ix_media_jobs_claim", table_name="media_jobs")
    op.drop_table("media_jobs")

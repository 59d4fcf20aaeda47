"""Keyless OIDC issuers by URL

Revision ID: 0004
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_issuers",
        sa.Column("issuer_url", sa.String(length=256), nullable=False),
        sa.Column("resource_key", sa.String(length=1024), nullable=False),
        sa.PrimaryKeyConstraint("issuer_url", name=op.f("pk_oidc_issuers")),
        sa.UniqueConstraint("resource_key", name=op.f("uq_oidc_issuers_resource_key")),
    )


def downgrade() -> None:
    op.drop_table("oidc_issuers")

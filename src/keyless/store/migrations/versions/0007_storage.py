"""Storage: global account names with sealed keys, blob containers, blobs and uncommitted blocks

Revision ID: 0007
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_accounts",
        sa.Column("name", sa.String(length=24), nullable=False),
        sa.Column("resource_key", sa.String(length=1024), nullable=False),
        sa.Column("resource_id", sa.String(length=1024), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("key1", sa.Text(), nullable=False),
        sa.Column("key2", sa.Text(), nullable=False),
        sa.Column("key1_created_at", sa.Float(), nullable=False),
        sa.Column("key2_created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_storage_accounts")),
        sa.UniqueConstraint("resource_key", name=op.f("uq_storage_accounts_resource_key")),
    )
    op.create_table(
        "blob_containers",
        sa.Column("account", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_modified", sa.Float(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("public_access", sa.String(length=16), nullable=True),
        sa.Column("signed_identifiers", sa.Text(), nullable=True),
        sa.Column("lease_id", sa.String(length=36), nullable=True),
        sa.Column("lease_state", sa.String(length=16), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("lease_duration", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("account", "name", name=op.f("pk_blob_containers")),
    )
    op.create_table(
        "blobs",
        sa.Column("account", sa.String(length=24), nullable=False),
        sa.Column("container", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("snapshot", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_modified", sa.Float(), nullable=False),
        sa.Column("file", sa.String(length=128), nullable=True),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("blocks", sa.Text(), nullable=True),
        sa.Column("lease_id", sa.String(length=36), nullable=True),
        sa.Column("lease_state", sa.String(length=16), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("lease_duration", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("account", "container", "name", "snapshot", name=op.f("pk_blobs")),
    )
    op.create_table(
        "blob_blocks",
        sa.Column("account", sa.String(length=24), nullable=False),
        sa.Column("container", sa.String(length=63), nullable=False),
        sa.Column("blob", sa.String(length=1024), nullable=False),
        sa.Column("block_id", sa.String(length=128), nullable=False),
        sa.Column("file", sa.String(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account", "container", "blob", "block_id", name=op.f("pk_blob_blocks")),
    )


def downgrade() -> None:
    op.drop_table("blob_blocks")
    op.drop_table("blobs")
    op.drop_table("blob_containers")
    op.drop_table("storage_accounts")

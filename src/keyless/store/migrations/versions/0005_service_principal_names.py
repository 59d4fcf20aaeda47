"""Service principal names (an app's identifier URIs) in the directory

Revision ID: 0005
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_principal_names",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name_key", sa.String(length=256), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["principals.object_id"],
            name=op.f("fk_service_principal_names_object_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "name_key", name=op.f("pk_service_principal_names")),
    )
    with op.batch_alter_table("service_principal_names", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_principal_names_object_id"), ["object_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("service_principal_names", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_principal_names_object_id"))
    op.drop_table("service_principal_names")

"""rbac: custom role definitions, deny assignments, groups, the RBAC version counter

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_role_assignments_name"), ["name"], unique=False)

    op.create_table(
        "role_definitions",
        sa.Column("name", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("role_name", sa.String(length=512), nullable=False),
        sa.Column("role_name_key", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("assignable_scopes", sa.Text(), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_role_definitions")),
        sa.UniqueConstraint(
            "tenant_id", "role_name_key", name=op.f("uq_role_definitions_tenant_id_role_name_key")
        ),
    )
    op.create_table(
        "deny_assignments",
        sa.Column("name", sa.String(length=36), nullable=False),
        sa.Column("deny_assignment_name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(length=1024), nullable=False),
        sa.Column("scope_key", sa.String(length=1024), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("principals", sa.Text(), nullable=False),
        sa.Column("exclude_principals", sa.Text(), nullable=False),
        sa.Column("do_not_apply_to_child_scopes", sa.Boolean(), nullable=False),
        sa.Column("is_system_protected", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_deny_assignments")),
    )
    with op.batch_alter_table("deny_assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deny_assignments_scope_key"), ["scope_key"], unique=False)

    op.create_table(
        "security_groups",
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("object_id", name=op.f("pk_security_groups")),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["security_groups.object_id"],
            name=op.f("fk_group_members_group_id_security_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "member_id", name=op.f("pk_group_members")),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_members_member_id"), ["member_id"], unique=False)

    rbac_state = op.create_table(
        "rbac_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rbac_state")),
    )
    op.bulk_insert(rbac_state, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("rbac_state")
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_members_member_id"))
    op.drop_table("group_members")
    op.drop_table("security_groups")
    with op.batch_alter_table("deny_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deny_assignments_scope_key"))
    op.drop_table("deny_assignments")
    op.drop_table("role_definitions")
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_assignments_name"))

"""Every table Keyless keeps, as SQLAlchemy Core metadata.

The Alembic migrations in ``migrations/versions`` create exactly these; a test checks
that the two never drift apart.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Timestamps are stored as UTC epoch seconds (float): portable and cheap to compare.

instance_settings = sa.Table(
    "instance_settings",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("display_name", sa.String(256), nullable=False),
    sa.Column("default_domain", sa.String(256), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("subscription_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.tenant_id"), nullable=False),
    sa.Column("display_name", sa.String(256), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Every resource-manager resource (resource groups included) is one row. ``id_key`` is the
# lower-cased resource id (ARM matches ids case-insensitively); ``resource_id`` keeps the
# casing most recently supplied.
resources = sa.Table(
    "resources",
    metadata,
    sa.Column("id_key", sa.String(1024), primary_key=True),
    sa.Column("resource_id", sa.String(1024), nullable=False),
    sa.Column("subscription_id", sa.String(36), nullable=False),
    sa.Column("group_key", sa.String(128), nullable=True),
    sa.Column("type_key", sa.String(256), nullable=False),
    sa.Column("parent_key", sa.String(1024), nullable=True),
    sa.Column("name", sa.String(260), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_by_type", sa.String(32), nullable=False),
    sa.Column("modified_at", sa.Float, nullable=False),
    sa.Column("modified_by", sa.String(256), nullable=False),
    sa.Column("modified_by_type", sa.String(32), nullable=False),
    sa.Index("ix_resources_listing", "subscription_id", "type_key", "group_key", "id_key"),
    sa.Index("ix_resources_parent", "parent_key", "type_key", "id_key"),
)

# Principals the authority issues tokens for: service principals, the local admin and
# managed identities (system- and user-assigned).
principals = sa.Table(
    "principals",
    metadata,
    sa.Column("object_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("app_id", sa.String(36), nullable=False, unique=True),
    sa.Column("principal_type", sa.String(32), nullable=False),
    sa.Column("display_name", sa.String(256), nullable=False),
    # For managed identities: the xms_mirid claim (the owning resource or the identity itself).
    sa.Column("managed_identity_resource_id", sa.String(1024), nullable=True),
    # The lower-cased id of the resource whose lifecycle this principal follows.
    sa.Column("owner_key", sa.String(1024), nullable=True, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

client_secrets = sa.Table(
    "client_secrets",
    metadata,
    sa.Column("key_id", sa.String(36), primary_key=True),
    sa.Column(
        "object_id",
        sa.String(36),
        sa.ForeignKey("principals.object_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # SHA-256 of a 256-bit random secret: brute force is not a concern, so no slow KDF.
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("hint", sa.String(8), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    # PKCS#8 PEM encrypted under the root key.
    sa.Column("private_key", sa.Text, nullable=False),
    sa.Column("certificate", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("retired_at", sa.Float, nullable=True),
)

role_assignments = sa.Table(
    "role_assignments",
    metadata,
    sa.Column("id_key", sa.String(1200), primary_key=True),
    sa.Column("name", sa.String(36), nullable=False),
    sa.Column("scope", sa.String(1024), nullable=False),
    sa.Column("scope_key", sa.String(1024), nullable=False, index=True),
    sa.Column("role_definition_name", sa.String(36), nullable=False),
    sa.Column("principal_id", sa.String(36), nullable=False, index=True),
    sa.Column("principal_type", sa.String(32), nullable=False),
    sa.Column("condition", sa.Text, nullable=True),
    sa.Column("condition_version", sa.String(8), nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("delegated_managed_identity_resource_id", sa.String(1024), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
)

# Long-running operations, polled through Azure-AsyncOperation and Location.
operations = sa.Table(
    "operations",
    metadata,
    sa.Column("operation_id", sa.String(36), primary_key=True),
    sa.Column("subscription_id", sa.String(36), nullable=False),
    sa.Column("resource_id", sa.String(1024), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float, nullable=True),
    # The response the synchronous call would have given, replayed by the Location poll.
    sa.Column("result_status", sa.Integer, nullable=True),
    sa.Column("result_body", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # The principal that started it may always poll it (its role may have gone with the scope).
    sa.Column("started_by", sa.String(36), nullable=True),
)

# Host tokens: the unguessable secret that says "this process runs as that VM / Function app".
# Looked up by SHA-256; the token itself is sealed so the admin can hand it out again.
workload_host_tokens = sa.Table(
    "workload_host_tokens",
    metadata,
    sa.Column("resource_key", sa.String(1024), primary_key=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("sealed_token", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# --- RBAC (migration 0002) ---------------------------------------------------------------
# Lookups of a role assignment by its name alone: names are unique across every scope.
sa.Index("ix_role_assignments_name", role_assignments.c.name)

# Custom role definitions, per tenant (built-in roles are code: keyless.rbac.builtin_roles).
# ``name`` is the lower-cased role GUID; lists are stored as JSON text.
role_definitions = sa.Table(
    "role_definitions",
    metadata,
    sa.Column("name", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("role_name", sa.String(512), nullable=False),
    # Lower-cased role name: unique in a tenant (RoleDefinitionWithSameNameExists).
    sa.Column("role_name_key", sa.String(512), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("assignable_scopes", sa.Text, nullable=False),
    sa.Column("permissions", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
    sa.UniqueConstraint("tenant_id", "role_name_key"),
)

# Deny assignments: only the system creates them (as in Azure); they win over every grant.
deny_assignments = sa.Table(
    "deny_assignments",
    metadata,
    sa.Column("name", sa.String(36), primary_key=True),
    sa.Column("deny_assignment_name", sa.String(256), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("scope", sa.String(1024), nullable=False),
    sa.Column("scope_key", sa.String(1024), nullable=False, index=True),
    # {"actions": [...], "notActions": [...], "dataActions": [...], "notDataActions": [...]}
    sa.Column("permissions", sa.Text, nullable=False),
    # JSON lists of {"id", "type"}; the zero GUID (type SystemDefined) means everyone.
    sa.Column("principals", sa.Text, nullable=False),
    sa.Column("exclude_principals", sa.Text, nullable=False),
    sa.Column("do_not_apply_to_child_scopes", sa.Boolean, nullable=False),
    sa.Column("is_system_protected", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Security groups, so role assignments to a group (principalType Group) grant its members.
security_groups = sa.Table(
    "security_groups",
    metadata,
    sa.Column("object_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("display_name", sa.String(256), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Direct members (principals or nested groups); membership is evaluated transitively.
group_members = sa.Table(
    "group_members",
    metadata,
    sa.Column(
        "group_id",
        sa.String(36),
        sa.ForeignKey("security_groups.object_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("member_id", sa.String(36), primary_key=True, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

# One row (id 1): bumped in the same transaction as every change to role definitions, role
# assignments, deny assignments or group membership. Every replica reads it on each check and
# reloads its in-memory authorization index when it moved, so a change is seen at once everywhere.
rbac_state = sa.Table(
    "rbac_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)


# Keyless OIDC issuers by the URL their tokens carry: the lookup of every federated exchange
# and every (unauthenticated) discovery request, so it is one indexed read.
oidc_issuers = sa.Table(
    "oidc_issuers",
    metadata,
    sa.Column("issuer_url", sa.String(256), primary_key=True),
    sa.Column("resource_key", sa.String(1024), nullable=False, unique=True),
)

# An application's identifier URIs (its service principal's names besides the appId), unique in a
# tenant as in Entra: the authority resolves a requested resource to its app through them.
service_principal_names = sa.Table(
    "service_principal_names",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    # Lower-cased without a trailing slash: how the authority compares resources.
    sa.Column("name_key", sa.String(256), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column(
        "object_id",
        sa.String(36),
        sa.ForeignKey("principals.object_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
)


# --- Key Vault (migration 0006) -----------------------------------------------------------
# Vault names are global, as in Azure (``{name}.vault.azure.net``): one row per name, held by a
# live vault or by a soft-deleted one until it is purged. ``name`` is lower-cased.
key_vaults = sa.Table(
    "key_vaults",
    metadata,
    sa.Column("name", sa.String(24), primary_key=True),
    sa.Column("resource_key", sa.String(1024), nullable=False),
    sa.Column("resource_id", sa.String(1024), nullable=False),
    sa.Column("location", sa.String(64), nullable=False),
    sa.Column("deleted_at", sa.Float, nullable=True),
    sa.Column("scheduled_purge_at", sa.Float, nullable=True),
    # A deleted vault's last resource document (JSON): deletedVaults answers from it and
    # ``createMode: recover`` restores it.
    sa.Column("deleted_document", sa.Text, nullable=True),
)

# Keys and secrets of a vault by name (``kind`` 'key' or 'secret'); ``name_key`` is lower-cased
# (Key Vault names are case-insensitive). A soft-deleted object keeps its row and versions.
kv_objects = sa.Table(
    "kv_objects",
    metadata,
    sa.Column("vault", sa.String(24), primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("name_key", sa.String(127), primary_key=True),
    sa.Column("name", sa.String(127), nullable=False),
    sa.Column("latest_version", sa.String(32), nullable=False),
    sa.Column("deleted_at", sa.Float, nullable=True),
    sa.Column("scheduled_purge_at", sa.Float, nullable=True),
    # Keys only: the rotation policy (JSON) and when it next rotates the key (epoch seconds).
    sa.Column("rotation_policy", sa.Text, nullable=True),
    sa.Column("next_rotation_at", sa.Float, nullable=True, index=True),
)

# Every version of a key or secret. ``document`` (JSON) holds what may be shown (attributes,
# tags, contentType, a key's public JWK and key_ops); ``sealed`` what may not (a key's private
# material, a secret's value), sealed under the root key.
kv_versions = sa.Table(
    "kv_versions",
    metadata,
    sa.Column("vault", sa.String(24), primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("name_key", sa.String(127), primary_key=True),
    sa.Column("version", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("sealed", sa.Text, nullable=False),
)

# Leases for background work that one replica at a time must do (key rotation, and later CMK
# checks and media jobs): a row per lease, taken when absent or expired.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)


# --- Storage (migration 0007) --------------------------------------------------------------------
# Storage account names are global, as in Azure (``{name}.blob.core.windows.net``); the account's
# two shared keys are sealed under the root key.
storage_accounts = sa.Table(
    "storage_accounts",
    metadata,
    sa.Column("name", sa.String(24), primary_key=True),
    sa.Column("resource_key", sa.String(1024), nullable=False, unique=True),
    sa.Column("resource_id", sa.String(1024), nullable=False),
    sa.Column("location", sa.String(64), nullable=False),
    sa.Column("key1", sa.Text, nullable=False),
    sa.Column("key2", sa.Text, nullable=False),
    sa.Column("key1_created_at", sa.Float, nullable=False),
    sa.Column("key2_created_at", sa.Float, nullable=False),
)

# Blob containers of an account; ``metadata`` is JSON; lease fields as the Lease Container call
# sets them (``lease_expires_at`` NULL with a lease: an infinite lease).
blob_containers = sa.Table(
    "blob_containers",
    metadata,
    sa.Column("account", sa.String(24), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_modified", sa.Float, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("public_access", sa.String(16), nullable=True),
    sa.Column("signed_identifiers", sa.Text, nullable=True),
    sa.Column("lease_id", sa.String(36), nullable=True),
    sa.Column("lease_state", sa.String(16), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("lease_duration", sa.Integer, nullable=True),
)

# Committed blobs (``snapshot`` '' for the base blob, else the snapshot's timestamp). Content lives
# in ``file`` (a path relative to the blob directory, never reused); ``properties`` is JSON (content
# headers, MD5, blob type); ``blocks`` the committed block list (JSON [[id, size], ...]).
blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("account", sa.String(24), primary_key=True),
    sa.Column("container", sa.String(63), primary_key=True),
    sa.Column("name", sa.String(1024), primary_key=True),
    sa.Column("snapshot", sa.String(32), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_modified", sa.Float, nullable=False),
    sa.Column("file", sa.String(128), nullable=True),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("blocks", sa.Text, nullable=True),
    sa.Column("lease_id", sa.String(36), nullable=True),
    sa.Column("lease_state", sa.String(16), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("lease_duration", sa.Integer, nullable=True),
)

# Uncommitted blocks (Put Block), until a Put Block List commits or drops them.
blob_blocks = sa.Table(
    "blob_blocks",
    metadata,
    sa.Column("account", sa.String(24), primary_key=True),
    sa.Column("container", sa.String(63), primary_key=True),
    sa.Column("blob", sa.String(1024), primary_key=True),
    sa.Column("block_id", sa.String(128), primary_key=True),
    sa.Column("file", sa.String(128), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Media Services accounts: names unique within a location (media.md §1), and the account key. With
# SystemKey ``account_key`` is the key sealed under the root key; with CustomerKey it is the key
# wrapped by the customer's key (``wrapping_key_id``, a versioned Key Vault key id), then sealed
# (the second, Keyless-held layer). ``generation`` changes whenever the key material or its
# wrapping does (in-memory copies are keyed by it); ``key_status`` is Accessible or Inaccessible.
media_accounts = sa.Table(
    "media_accounts",
    metadata,
    sa.Column("resource_key", sa.String(1024), primary_key=True),
    sa.Column("resource_id", sa.String(1024), nullable=False),
    sa.Column("location", sa.String(64), nullable=False),
    sa.Column("name", sa.String(24), nullable=False),
    sa.Column("key_type", sa.String(16), nullable=False),
    sa.Column("account_key", sa.Text, nullable=False),
    sa.Column("wrapping_key_id", sa.String(512), nullable=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("key_status", sa.String(16), nullable=False),
    sa.Column("key_status_reason", sa.Text, nullable=True),
    sa.Column("checked_at", sa.Float, nullable=False),
    sa.UniqueConstraint("location", "name"),
)

# Media Services jobs waiting for or under encoding, one row per job (the job resource itself is
# in ``resources``). Any replica claims a row whose lease is free or expired (``SELECT ... FOR
# UPDATE SKIP LOCKED`` on PostgreSQL) and renews it while it works; a replica that dies loses the
# lease and another takes the job over. ``work`` is what the job needs, fixed at creation (the
# transform outputs' presets, the inputs and output assets); ``priority`` 0 High, 1 Normal, 2 Low.
media_jobs = sa.Table(
    "media_jobs",
    metadata,
    sa.Column("job_key", sa.String(1024), primary_key=True),
    sa.Column("account_key", sa.String(1024), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("work", sa.Text, nullable=False),
    sa.Column("lease_holder", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("progress", sa.Integer, nullable=False),
    sa.Column("changed_at", sa.Float, nullable=False),  # last state or progress change
    sa.Index("ix_media_jobs_claim", "state", "priority", "created_at"),
    sa.Index("ix_media_jobs_changed", "changed_at"),
)

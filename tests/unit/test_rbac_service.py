"""RbacService against a real database (SQLite, or PostgreSQL with KEYLESS_TEST_DATABASE=postgresql):
persistence, replica consistency through the version row, groups, deny assignments, the data-plane
hook and the authorizer's errors.  Two RbacService objects on one database are two replicas."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyless.arm.engine import RequestContext, ResourceManager
from keyless.arm.errors import ArmError
from keyless.arm.ids import ResourceId
from keyless.arm.visibility import SkipTokens
from keyless.authority import principals
from keyless.authority.tokens import Caller
from keyless.directory import Directory, groups
from keyless.providers.resource_groups import ResourceGroupType
from keyless.rbac.evaluator import Permission
from keyless.rbac.service import RbacService, everyone
from keyless.sealing import Sealer
from keyless.store.db import Database
from keyless.store.tables import rbac_state, role_assignments
from tests.keyless_server import fresh_database_url

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
RG_READ = "Microsoft.Resources/subscriptions/resourceGroups/read"
RG_WRITE = "Microsoft.Resources/subscriptions/resourceGroups/write"


@dataclass
class World:
    db: Database
    a: RbacService  # replica A
    b: RbacService  # replica B
    tenant: str
    sub: str
    admin: Caller
    rg: str
    other_rg: str

    def principal(self, name: str = "app") -> Caller:
        with self.db.write() as conn:
            p = principals.create_principal(
                conn, tenant_id=self.tenant, principal_type=principals.SERVICE_PRINCIPAL, display_name=name
            )
        return Caller(
            p.object_id, p.app_id, self.tenant, p.principal_type, "https://management.azure.com", {}
        )

    def assign(
        self, who: str, role: str, scope: str, service: RbacService | None = None, **props: str
    ) -> str:
        name = str(uuid.uuid4())
        body = {
            "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{role}",
            "principalId": who,
        }
        body.update(props)
        (service or self.a).create_assignment(self.admin, scope, name, body)
        return name

    def version(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(sa.select(rbac_state.c.version)).scalar_one())

    def assignment_count(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(role_assignments)).scalar_one())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with fresh_database_url() as url:
        db = Database(url or f"sqlite:///{tmp_path / 'keyless.db'}")
        db.migrate()
        tenant, sub, admin_oid = Directory(db).bootstrap()
        with db.read() as conn:
            admin_principal = principals.get_by_object_id(conn, admin_oid)
        assert admin_principal is not None
        admin = Caller(
            admin_oid, admin_principal.app_id, tenant, "ServicePrincipal", "https://management.azure.com", {}
        )
        a, b = RbacService(db, role_assignment_limit=6), RbacService(db, role_assignment_limit=6)
        manager = ResourceManager(db, a, 100, SkipTokens(Sealer(AESGCM.generate_key(bit_length=256))))
        manager.register(ResourceGroupType())
        ctx = RequestContext(admin, "2021-04-01", "https://management.azure.com")
        for group in ("rg1", "rg2"):
            manager.put(ctx, ResourceId(sub, group), b'{"location": "westeurope"}')
        yield World(
            db,
            a,
            b,
            tenant,
            sub,
            admin,
            f"/subscriptions/{sub}/resourceGroups/rg1",
            f"/subscriptions/{sub}/resourceGroups/rg2",
        )
        db.dispose()


def test_a_grant_on_one_replica_governs_the_next_check_on_another(world: World) -> None:
    app = world.principal()
    assert not world.b.allowed(app, RG_READ, world.rg)  # B has built its index now
    name = world.assign(app.object_id, READER, world.rg, world.a)
    assert world.b.allowed(app, RG_READ, world.rg)
    assert world.b.allowed(app, RG_READ, world.rg + "/providers/Microsoft.X/y/z")  # below
    assert not world.b.allowed(app, RG_READ, world.other_rg)  # sibling
    assert not world.b.allowed(app, "Microsoft.Resources/subscriptions/read", f"/subscriptions/{world.sub}")
    world.b.delete_assignment(world.admin, world.rg, name)
    assert not world.a.allowed(app, RG_READ, world.rg)
    assert not world.b.allowed(app, RG_READ, world.rg)


def test_own_writes_apply_in_place_and_other_writes_reload(world: World) -> None:
    app = world.principal()
    world.a.check(world.admin, RG_READ, world.rg)
    before = world.a.snapshot()
    world.assign(app.object_id, READER, world.rg, world.a)
    # Replica A applied its own write to the same index object; B has to reload.
    assert world.a.snapshot() is before
    assert world.a.snapshot().version == world.version()
    b_before = world.b.snapshot()
    world.assign(app.object_id, CONTRIBUTOR, world.other_rg, world.a)
    assert world.b.snapshot() is not b_before
    assert world.b.allowed(app, RG_WRITE, world.other_rg)


def test_a_failed_write_changes_nothing_not_even_the_version(world: World) -> None:
    app = world.principal()
    world.assign(app.object_id, READER, world.rg)
    version, count = world.version(), world.assignment_count()
    with pytest.raises(ArmError) as caught:
        world.assign(app.object_id, READER, world.rg)
    assert caught.value.status == 409 and caught.value.code == "RoleAssignmentExists"
    assert (world.version(), world.assignment_count()) == (version, count)


def test_the_per_subscription_limit(world: World) -> None:
    while world.assignment_count() < 6:  # the admin's Owner assignment counts too
        world.assign(world.principal().object_id, READER, world.rg)
    version = world.version()
    with pytest.raises(ArmError) as caught:
        world.assign(world.principal().object_id, READER, world.other_rg)
    assert (caught.value.status, caught.value.code) == (400, "RoleAssignmentLimitExceeded")
    assert caught.value.message == "No more role assignments can be created."
    assert (world.version(), world.assignment_count()) == (version, 6)


def test_group_membership_is_transitive_and_revocable_across_replicas(world: World) -> None:
    app = world.principal()
    # Groups live in the directory; membership changes go through replica a's RBAC write.
    directory = Directory(world.a.db, world.a.membership_change)
    outer = directory.create_group(world.tenant, "outer").object_id
    inner = directory.create_group(world.tenant, "inner").object_id
    directory.add_group_member(outer, inner)
    directory.add_group_member(inner, app.object_id)
    directory.add_group_member(inner, outer)  # a cycle is harmless
    assert not world.b.allowed(app, RG_WRITE, world.rg)
    world.assign(outer, CONTRIBUTOR, world.rg, principalType="Group")
    assert world.b.allowed(app, RG_WRITE, world.rg)
    why = world.b.explain(world.admin, app.object_id, RG_WRITE, world.rg)[2]
    assert why.matched_assignments[0].assignment.principal_id == outer
    version = world.version()
    assert directory.remove_group_member(inner, app.object_id)
    assert world.version() == version + 1  # every replica rebuilds its group graph
    assert not world.b.allowed(app, RG_WRITE, world.rg)
    assert not directory.remove_group_member(inner, app.object_id)
    assert world.version() == version + 1  # a no-op changes nothing
    with pytest.raises(groups.NoSuchObject) as caught:
        directory.add_group_member(str(uuid.uuid4()), app.object_id)
    assert caught.value.kind == "group"
    with pytest.raises(groups.NoSuchObject) as caught:
        directory.add_group_member(outer, str(uuid.uuid4()))
    assert caught.value.kind == "member"
    assert world.version() == version + 1


def test_deny_assignments_win_and_honour_exclusions_and_child_scopes(world: World) -> None:
    app, other = world.principal("app"), world.principal("other")
    world.assign(app.object_id, OWNER, world.rg)
    world.assign(other.object_id, OWNER, world.rg)
    deny = world.a.create_deny_assignment(
        world.rg,
        "no writes",
        Permission(actions=("*/write",)),
        [everyone()],
        exclude_principals=[(other.object_id, "ServicePrincipal")],
        do_not_apply_to_child_scopes=True,
    )
    assert not world.b.allowed(app, RG_WRITE, world.rg)
    assert world.b.allowed(app, RG_READ, world.rg)
    assert world.b.allowed(other, RG_WRITE, world.rg)  # excluded
    child = world.rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x"
    assert world.b.allowed(app, "Microsoft.ManagedIdentity/userAssignedIdentities/write", child)
    with pytest.raises(ArmError) as caught:
        world.b.check(app, RG_WRITE, world.rg)
    assert "ABAC" not in caught.value.message
    why = world.b.explain(world.admin, app.object_id, RG_WRITE, world.rg)[2]
    assert why.decision == "denied_by_deny_assignment"
    assert why.deny_assignments[0].deny_assignment.name == deny.deny.name
    listed = world.a.list_deny_assignments(world.admin, world.rg)
    assert [d.deny.name for d in listed] == [deny.deny.name]
    assert world.a.delete_deny_assignment(deny.deny.name)
    assert world.b.allowed(app, RG_WRITE, world.rg)
    assert not world.a.delete_deny_assignment(deny.deny.name)


def test_data_plane_hook_never_lets_control_plane_wildcards_read_data(world: World) -> None:
    app = world.principal()
    container = (
        world.rg + "/providers/Microsoft.Storage/storageAccounts/st1/blobServices/default/containers/c1"
    )
    world.assign(app.object_id, OWNER, world.rg)
    decision = world.b.authorize_data_action(app, BLOB_READ, container)
    assert not decision.allowed and decision.decision == "not_granted"
    world.assign(app.object_id, BLOB_READER, world.rg)
    decision = world.b.authorize_data_action(app, BLOB_READ, container)
    assert decision.allowed
    assert decision.matched_assignments[0].role_name == "Storage Blob Data Reader"
    assert not world.b.authorize_data_action(app, BLOB_READ.replace("/read", "/write"), container).allowed


def test_a_condition_never_grants_and_ARM_says_so(world: World) -> None:
    app = world.principal()
    condition = "((!(ActionMatches{'Microsoft.Resources/subscriptions/resourceGroups/read'})))"
    world.assign(app.object_id, READER, world.rg, condition=condition)
    with pytest.raises(ArmError) as caught:
        world.b.check(app, RG_READ, world.rg)
    assert caught.value.status == 403 and caught.value.code == "AuthorizationFailed"
    assert "does not have authorization or an ABAC condition not fulfilled to perform action" in (
        caught.value.message
    )
    stored = world.a.list_assignments(world.admin, world.rg, principal_id=app.object_id)
    assert stored[0].condition == condition and stored[0].condition_version == "2.0"


def test_the_last_subscription_admin_cannot_be_removed(world: World) -> None:
    sub_scope = f"/subscriptions/{world.sub}"
    owner = world.a.list_assignments(world.admin, sub_scope, at_scope=True)
    assert len(owner) == 1
    with pytest.raises(ArmError) as caught:
        world.a.delete_assignment(world.admin, sub_scope, owner[0].name)
    assert (caught.value.code, caught.value.message) == (
        "LastRbacAdminAssignment",
        "Cannot delete the last RBAC admin assignment.",
    )
    # With a second admin at the subscription, the first may go.
    second = world.principal("second admin")
    world.assign(second.object_id, "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", sub_scope)  # User Access Admin
    assert world.a.delete_assignment(world.admin, sub_scope, owner[0].name) is not None
    assert not world.b.allowed(world.admin, RG_READ, world.rg)


def test_custom_roles_persist_update_and_cannot_be_deleted_in_use(world: World) -> None:
    app = world.principal()
    guid = str(uuid.uuid4())
    props = {
        "roleName": "Group reader",
        "assignableScopes": [world.rg],
        "permissions": [{"actions": ["Microsoft.Resources/subscriptions/resourceGroups/read"]}],
    }
    created, _ = world.a.put_role_definition(world.admin, world.rg, guid, props)
    assert created
    name = world.assign(app.object_id, guid, world.rg)
    assert world.b.allowed(app, RG_READ, world.rg)
    props["permissions"] = [{"actions": ["Microsoft.Resources/subscriptions/resourceGroups/write"]}]
    created, _ = world.a.put_role_definition(world.admin, world.rg, guid, props)
    assert not created
    assert not world.b.allowed(app, RG_READ, world.rg)
    assert world.b.allowed(app, RG_WRITE, world.rg)
    with pytest.raises(ArmError) as caught:
        world.a.delete_role_definition(world.admin, world.rg, guid)
    assert caught.value.code == "RoleDefinitionHasAssignments"
    world.a.delete_assignment(world.admin, world.rg, name)
    assert world.a.delete_role_definition(world.admin, world.rg, guid) is not None
    assert world.b.role_definition(world.tenant, guid) is None
    assert world.a.delete_role_definition(world.admin, world.rg, guid) is None

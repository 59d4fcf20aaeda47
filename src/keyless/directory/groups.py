"""Security groups of the directory and their members (principals or nested groups).

Functions here work on a connection; a change to membership must run inside the RBAC write
transaction the caller opens (``RbacService.membership_change``), since every access decision
reads the group graph.  Object ids are stored in lower case.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from keyless.directory import principals
from keyless.store.tables import group_members, security_groups

GROUP = "Group"
# Transitive membership is walked at most this many groups deep/wide (a bound on any request).
_CLOSURE_LIMIT = 10_000


@dataclass(frozen=True)
class Group:
    object_id: str
    tenant_id: str
    display_name: str
    created_at: float


def _group(row: sa.Row[tuple[object, ...]]) -> Group:
    return Group(row.object_id, row.tenant_id, row.display_name, row.created_at)


def create(conn: sa.Connection, tenant_id: str, display_name: str) -> Group:
    group = Group(str(uuid.uuid4()), tenant_id, display_name, time.time())
    conn.execute(
        security_groups.insert().values(
            object_id=group.object_id,
            tenant_id=tenant_id,
            display_name=display_name,
            created_at=group.created_at,
        )
    )
    return group


def get(conn: sa.Connection, group_id: str) -> Group | None:
    row = conn.execute(
        sa.select(security_groups).where(security_groups.c.object_id == group_id.lower())
    ).first()
    return _group(row) if row is not None else None


def get_many(conn: sa.Connection, group_ids: Sequence[str]) -> list[Group]:
    if not group_ids:
        return []
    rows = conn.execute(
        sa.select(security_groups).where(security_groups.c.object_id.in_([g.lower() for g in group_ids]))
    ).all()
    return [_group(r) for r in rows]


def in_tenant(
    conn: sa.Connection, tenant_id: str, condition: object, after: str | None, limit: int
) -> list[Group]:
    """Groups of ``tenant_id`` matching ``condition`` (SQL over ``security_groups``), by object id."""
    query = sa.select(security_groups).where(security_groups.c.tenant_id == tenant_id, condition)  # type: ignore[arg-type]
    if after is not None:
        query = query.where(security_groups.c.object_id > after)
    rows = conn.execute(query.order_by(security_groups.c.object_id).limit(limit)).all()
    return [_group(r) for r in rows]


def members(conn: sa.Connection, group_id: str) -> list[str]:
    """The object ids of the group's direct members, sorted."""
    rows = conn.execute(
        sa.select(group_members.c.member_id)
        .where(group_members.c.group_id == group_id.lower())
        .order_by(group_members.c.member_id)
    ).all()
    return [r.member_id for r in rows]


def kind_of(conn: sa.Connection, object_id: str) -> str | None:
    """``ServicePrincipal`` (managed identities included), ``Group``, or None when unknown:
    an object's type as role assignments name it."""
    principal = principals.get_by_object_id(conn, object_id.lower())
    if principal is not None:
        return principal_kind(principal.principal_type)
    return GROUP if get(conn, object_id) is not None else None


def principal_kind(principal_type: str) -> str:
    """A directory principal's type as role assignments name it (managed identities are SPs)."""
    if principal_type in (principals.SERVICE_PRINCIPAL, principals.MANAGED_IDENTITY):
        return "ServicePrincipal"
    return principal_type


class NoSuchObject(LookupError):
    """The group (``kind`` "group") or the member (``kind`` "member") does not exist."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(object_id)
        self.kind = kind
        self.object_id = object_id


def add_member(conn: sa.Connection, group_id: str, member_id: str) -> bool:
    """Add a principal or nested group; False when it already was a member. NoSuchObject when the
    group or the member does not exist (``member_id`` must be a GUID: the caller checks)."""
    group, member = group_id.lower(), member_id.lower()
    if get(conn, group) is None:
        raise NoSuchObject("group", group_id)
    if kind_of(conn, member) is None:
        raise NoSuchObject("member", member_id)
    present = conn.execute(
        sa.select(group_members.c.member_id).where(
            group_members.c.group_id == group, group_members.c.member_id == member
        )
    ).first()
    if present is None:
        conn.execute(group_members.insert().values(group_id=group, member_id=member, created_at=time.time()))
    return present is None


def remove_member(conn: sa.Connection, group_id: str, member_id: str) -> bool:
    """Remove a direct member; False when it was not one."""
    gone = conn.execute(
        group_members.delete().where(
            group_members.c.group_id == group_id.lower(), group_members.c.member_id == member_id.lower()
        )
    )
    return bool(gone.rowcount)


def membership_edges(conn: sa.Connection) -> Iterable[tuple[str, str]]:
    """Every (member, group) edge, lower case: what RBAC's group graph is built from."""
    for row in conn.execute(sa.select(group_members.c.group_id, group_members.c.member_id)):
        yield row.member_id.lower(), row.group_id.lower()


def transitive_groups(conn: sa.Connection, object_id: str) -> set[str]:
    """Every group ``object_id`` is in, directly or through nested groups (cycles are harmless)."""
    seen: set[str] = set()
    frontier = [object_id.lower()]
    while frontier and len(seen) < _CLOSURE_LIMIT:
        rows = conn.execute(
            sa.select(group_members.c.group_id).where(group_members.c.member_id.in_(frontier))
        ).all()
        frontier = [r.group_id for r in rows if r.group_id not in seen]
        seen.update(frontier)
    return seen

"""Lists answer what the caller may read, as ARM's do.

ARM authorizes a list at its scope. A caller denied there but holding a role assignment below it
(Reader on one resource group, on one identity) is not refused: the list answers the items it may
read, each checked with its own type's ``read`` action. Only a caller with no role at or below the
scope gets the 403. A subscription is shown to anyone with a role assignment in it, which is how
``az login --identity`` finds the subscription of an identity whose only role is on a group.

Sources: Azure RBAC docs ("a user with access to a resource group sees the subscription and that
group in the portal and in ``az account list``; lists show only the resources the user can read");
``az login`` lists ``GET /subscriptions`` and fails with "no subscriptions found" only when it is
empty (shared/reference/az-cli.md, row 50).

To stay cheap, the RBAC index is asked once per request for the scopes of the caller's role
assignments (``RbacService.readable``): the database query is narrowed to rows at or under those
scopes, and only those rows are decided one by one, on the same in-memory snapshot.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from keyless.arm import errors
from keyless.arm.identity import MAX_RESOURCE_ID
from keyless.authority.tokens import Caller
from keyless.sealing import Sealer
from keyless.store.tables import resources

if TYPE_CHECKING:
    from keyless.arm.engine import Authorizer

# More assignment scopes than this under one list: no SQL narrowing (each row is still decided).
MAX_NARROWING_SCOPES = 64
# Rows looked at per page answered: a page may come back short, with a nextLink, past this.
SCAN_FACTOR = 10


def _under(scope_key: str, ancestor: str) -> bool:
    """``scope_key`` equals ``ancestor`` or lies inside it (both lower-case, no trailing '/')."""
    return ancestor == "/" or scope_key == ancestor or scope_key.startswith(ancestor + "/")


@dataclass(frozen=True)
class ReadView:
    """What a list at one scope may answer.

    ``roots``: None when any row under the scope may be readable; otherwise the id keys at or
    under which every readable row lies. ``allows(action, resource_id)``: None when every row in
    reach is readable (the caller may read at the scope itself, or RBAC is off).
    """

    roots: tuple[str, ...] | None = None
    allows: Callable[[str, str], bool] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.roots is None and self.allows is None

    def narrowing(self) -> sa.ColumnElement[bool] | None:
        """The SQL condition confining a query to ``roots`` (None: no narrowing)."""
        if self.roots is None:
            return None
        column = resources.c.id_key
        return sa.or_(*(sa.or_(column == r, column.startswith(r + "/", autoescape=True)) for r in self.roots))

    def readable(self, action: str, resource_id: str) -> bool:
        return self.allows is None or self.allows(action, resource_id)


def read_view(authorizer: Authorizer, caller: Caller, action: str, scope: str) -> ReadView:
    """The view of a list needing ``action`` at ``scope`` (a resource id, any case).

    Raises the authorizer's 403 ``AuthorizationFailed`` when the caller may read nothing there:
    neither at the scope nor through any role assignment below it.
    """
    try:
        authorizer.check(caller, action, scope)
        return ReadView()
    except errors.ArmError as exc:
        if exc.status != 403:
            raise
        denied = exc
    granted = authorizer.readable(caller)
    if granted is None:
        return ReadView()
    scopes, allows = granted
    key = scope.lower().rstrip("/")
    if any(_under(key, s) for s in scopes):
        # A role above or at the scope that does not grant this action (or a deny assignment):
        # anything under it may still be readable through another grant.
        return ReadView(None, allows)
    below = tuple(sorted(s for s in scopes if s.startswith(key + "/")))
    if not below:
        raise denied
    return ReadView(below if len(below) <= MAX_NARROWING_SCOPES else None, allows)


def visible_subscriptions(
    authorizer: Authorizer, caller: Caller, subscription_ids: Iterable[str]
) -> set[str]:
    """The subscriptions (lower-case ids) ``caller`` sees in ``GET /subscriptions``: those it may
    read, and those it holds any role assignment in (ARM shows those too)."""
    read = "Microsoft.Resources/subscriptions/read"
    granted = authorizer.readable(caller)
    visible: set[str] = set()
    for sub in subscription_ids:
        key = f"/subscriptions/{sub.lower()}"
        if granted is None:
            visible.add(sub.lower())
            continue
        scopes, allows = granted
        if allows(read, key) or any(_under(s, key) for s in scopes if s != "/"):
            visible.add(sub.lower())
    return visible


class SkipTokens:
    """``$skiptoken`` values: the id key a page starts after, sealed under the root key.

    Opaque, as ARM's are: a page can stop after rows the caller may not read (``scan``'s budget),
    and a token in clear would name them. Purpose-bound AES-GCM (``keyless.sealing``), so a token
    cannot be forged or edited, and any replica sharing the root key reads it.
    """

    PURPOSE = "arm-skiptoken"

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def encode(self, after: str) -> str:
        """The token of a page starting after the id key ``after`` (URL-safe, no padding)."""
        sealed = self._sealer.seal(after.encode(), self.PURPOSE).encode()
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def decode(self, skiptoken: str) -> str:
        """The id key a page starts after; ARM's 400 ``InvalidSkipToken`` for anything not issued here."""
        after = ""
        if len(skiptoken) <= 4096:
            try:
                sealed = base64.urlsafe_b64decode(skiptoken + "=" * (-len(skiptoken) % 4)).decode()
                after = self._sealer.open(sealed, self.PURPOSE).decode()
            except (ValueError, UnicodeDecodeError):
                after = ""
        if not after or len(after) > MAX_RESOURCE_ID or not after.isprintable():
            shown = skiptoken if len(skiptoken) <= 100 else skiptoken[:100] + "..."
            raise errors.bad_request(f"The skip token '{shown}' is invalid.", code="InvalidSkipToken")
        return after


def scan(
    conn: sa.Connection,
    condition: sa.ColumnElement[bool],
    view: ReadView,
    keep: Callable[[Any], bool] | None,
    page_size: int,
    after: str | None,
) -> tuple[list[Any], str | None]:
    """One page of ``resources`` rows matching ``condition``, in id order after ``after``, that
    ``keep`` accepts (visibility and any filter; None keeps all).

    Returns (rows, the id key the next page starts after, or None when there is no more). Looks at
    no more than ``page_size * SCAN_FACTOR`` rows, so a page can be short with a next page.
    """
    narrowing = view.narrowing()
    if narrowing is not None:
        condition = sa.and_(condition, narrowing)
    if keep is None:  # the common case: one query, as before
        query = condition if after is None else sa.and_(condition, resources.c.id_key > after)
        rows = conn.execute(
            sa.select(resources).where(query).order_by(resources.c.id_key).limit(page_size + 1)
        ).all()
        if len(rows) > page_size:
            return list(rows[:page_size]), rows[page_size - 1].id_key
        return list(rows), None
    out: list[Any] = []
    budget = page_size * SCAN_FACTOR
    cursor = after
    while budget > 0:
        query = condition if cursor is None else sa.and_(condition, resources.c.id_key > cursor)
        batch = conn.execute(
            sa.select(resources).where(query).order_by(resources.c.id_key).limit(page_size + 1)
        ).all()
        for row in batch:
            budget -= 1
            if keep(row):
                if len(out) == page_size:
                    return out, out[-1].id_key
                out.append(row)
            cursor = row.id_key
        if len(batch) <= page_size:
            return out, None
    return out, cursor

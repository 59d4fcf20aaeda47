"""Leases on blobs and containers ("Lease Blob" / "Lease Container" REST docs), and the lease
check of every other operation.

Stored: ``lease_id``, ``lease_state`` ("leased" | "breaking" | "broken" | NULL), ``lease_expires_at``
(end of a fixed lease, or the moment a breaking lease breaks), ``lease_duration`` (-1 infinite,
else 15-60 s). The visible state is derived at read time, so an expiring lease needs no writer:
leased past its end is "expired", breaking past its break time is "broken".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyless.providers.storage.blob import errors

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class LeaseView:
    state: str  # available | leased | expired | breaking | broken
    status: str  # locked | unlocked
    duration: str | None  # infinite | fixed (only while leased)


def view(row: Any, now: float) -> LeaseView:
    """The visible lease of a blob or container row."""
    stored = row.lease_state
    if stored == "leased":
        if row.lease_duration not in (None, -1) and (row.lease_expires_at or 0) <= now:
            return LeaseView("expired", "unlocked", None)
        return LeaseView("leased", "locked", "infinite" if row.lease_duration in (None, -1) else "fixed")
    if stored == "breaking":
        if (row.lease_expires_at or 0) <= now:
            return LeaseView("broken", "unlocked", None)
        return LeaseView("breaking", "locked", None)
    if stored == "broken":
        return LeaseView("broken", "unlocked", None)
    return LeaseView("available", "unlocked", None)


def headers(row: Any, now: float) -> dict[str, str]:
    """``x-ms-lease-state``/``-status`` (and ``-duration`` while leased) for a properties answer."""
    lease = view(row, now)
    out = {"x-ms-lease-state": lease.state, "x-ms-lease-status": lease.status}
    if lease.duration:
        out["x-ms-lease-duration"] = lease.duration
    return out


def _active(row: Any, now: float) -> bool:
    return view(row, now).state in ("leased", "breaking")


def check(row: Any, lease_id: str | None, now: float, what: str, *, write: bool) -> None:
    """The lease rule of an operation on ``row`` (a blob or container; ``what`` names it): a write
    to a leased object needs its lease id (412 ``LeaseIdMissing``), and any given lease id must be
    the active lease's (412 ``LeaseIdMismatchWith…Operation`` / ``LeaseNotPresentWith…Operation``)."""
    kind = "Blob" if what == "blob" else "Container"
    active = row is not None and _active(row, now)
    if lease_id is None:
        if active and write:
            raise errors.lease_error(412, "LeaseIdMissing", what)
        return
    if not active:
        raise errors.lease_error(412, f"LeaseNotPresentWith{kind}Operation", what)
    if lease_id.lower() != str(row.lease_id).lower():
        raise errors.lease_error(412, f"LeaseIdMismatchWith{kind}Operation", what)


def _guid(value: str | None, header_name: str) -> str | None:
    if value is None:
        return None
    if _GUID.fullmatch(value.strip()) is None:
        raise errors.invalid_header(header_name, value)
    return value.strip().lower()


def _duration(value: str | None) -> int:
    if value is None:
        raise errors.missing_header("x-ms-lease-duration")
    try:
        seconds = int(value) if len(value) <= 4 else 0
    except ValueError:
        raise errors.invalid_header("x-ms-lease-duration", value) from None
    if seconds != -1 and not 15 <= seconds <= 60:
        raise errors.invalid_header("x-ms-lease-duration", value)
    return seconds


def apply(
    row: Any, request: Mapping[str, str], now: float, what: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One lease action (``x-ms-lease-action``) on ``row``: (status, column updates, headers).

    Raises 400 for a missing or bad header, 409 for an action the lease state refuses."""
    action = (request.get("x-ms-lease-action") or "").lower()
    lease = view(row, now)
    current = str(row.lease_id).lower() if row.lease_id else None
    given = _guid(request.get("x-ms-lease-id"), "x-ms-lease-id")
    proposed = _guid(request.get("x-ms-proposed-lease-id"), "x-ms-proposed-lease-id")

    def conflict(code: str) -> errors.StorageError:
        return errors.lease_error(409, code, what)

    if action == "acquire":
        duration = _duration(request.get("x-ms-lease-duration"))
        if lease.state in ("leased", "breaking"):
            if lease.state == "breaking":
                raise conflict(
                    "LeaseIsBreakingAndCannotBeAcquired" if proposed == current else "LeaseAlreadyPresent"
                )
            if proposed != current:
                raise conflict("LeaseAlreadyPresent")
        lease_id = proposed or str(uuid.uuid4())
        updates = _leased(lease_id, duration, now)
        return 201, updates, {"x-ms-lease-id": lease_id}
    if action == "break":
        period_text = request.get("x-ms-lease-break-period")
        period: int | None = None
        if period_text is not None:
            if not period_text.isdigit() or len(period_text) > 2 or int(period_text) > 60:
                raise errors.invalid_header("x-ms-lease-break-period", period_text)
            period = int(period_text)
        if lease.state == "available":
            raise conflict("LeaseNotPresentWithLeaseOperation")
        if lease.state in ("broken", "expired"):
            return 202, {"lease_state": "broken", "lease_expires_at": now}, {"x-ms-lease-time": "0"}
        if lease.state == "breaking":
            ends = float(row.lease_expires_at)
            if period is not None:
                ends = min(ends, now + period)
        elif row.lease_duration in (None, -1):
            ends = now + (period or 0)
        else:
            remaining = float(row.lease_expires_at) - now
            ends = now + (remaining if period is None else min(remaining, period))
        left = max(0, int(ends - now + 0.999))
        state = "breaking" if ends > now else "broken"
        return 202, {"lease_state": state, "lease_expires_at": ends}, {"x-ms-lease-time": str(left)}
    if given is None:
        raise errors.missing_header("x-ms-lease-id")
    if action == "renew":
        if lease.state == "available":
            raise conflict("LeaseNotPresentWithLeaseOperation")
        if given != current:
            raise conflict("LeaseIdMismatchWithLeaseOperation")
        if lease.state in ("breaking", "broken"):
            raise conflict("LeaseIsBrokenAndCannotBeRenewed")
        return 200, _leased(given, int(row.lease_duration or -1), now), {"x-ms-lease-id": given}
    if action == "change":
        if proposed is None:
            raise errors.missing_header("x-ms-proposed-lease-id")
        if lease.state == "breaking":
            raise conflict("LeaseIsBreakingAndCannotBeChanged")
        if lease.state != "leased":
            raise conflict("LeaseNotPresentWithLeaseOperation")
        if given not in (current, proposed):
            raise conflict("LeaseIdMismatchWithLeaseOperation")
        return 200, {"lease_id": proposed}, {"x-ms-lease-id": proposed}
    if action == "release":
        if lease.state == "available":
            raise conflict("LeaseNotPresentWithLeaseOperation")
        if given != current:
            raise conflict("LeaseIdMismatchWithLeaseOperation")
        return 200, released(), {}
    raise errors.invalid_header("x-ms-lease-action", request.get("x-ms-lease-action") or "")


def _leased(lease_id: str, duration: int, now: float) -> dict[str, Any]:
    return {
        "lease_id": lease_id,
        "lease_state": "leased",
        "lease_duration": duration,
        "lease_expires_at": None if duration == -1 else now + duration,
    }


def released() -> dict[str, Any]:
    return {"lease_id": None, "lease_state": None, "lease_duration": None, "lease_expires_at": None}

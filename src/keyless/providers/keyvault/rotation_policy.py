"""Key rotation policies: parse and check them, store them, and work out when a key next rotates.

Shape (keyvault.md §1 KeyRotationPolicy): ``{id, lifetimeActions: [{trigger: {timeAfterCreate |
timeBeforeExpiry}, action: {type: Rotate | Notify}}], attributes: {expiryTime, created, updated}}``.
Rules from learn.microsoft.com/azure/key-vault/keys/how-to-configure-key-rotation: at most one
action of each type; rotation at least 7 days after creation and at least 7 days before expiry;
``expiryTime`` at least 28 days. ``floor_seconds`` (``Settings.keyvault_rotation_floor``) is that
7-day floor and the 28-day one is four floors, so a test or demo can lower both together without
anything else changing; Azure's values are the default.

Durations are ISO 8601 (``P90D``, ``P1Y2M``, ``PT12H``). Years count 365 days and months 30, the
lengths Key Vault documents for its policy durations' minimums.
"""

from __future__ import annotations

import re
import time
from typing import Any

import sqlalchemy as sa

from keyless.providers.keyvault import errors
from keyless.providers.keyvault import store as kv

_DURATION = re.compile(
    r"P(?:(?P<y>\d{1,4})Y)?(?:(?P<mo>\d{1,5})M)?(?:(?P<w>\d{1,5})W)?(?:(?P<d>\d{1,6})D)?"
    r"(?:T(?:(?P<h>\d{1,7})H)?(?:(?P<mi>\d{1,9})M)?(?:(?P<s>\d{1,10})S)?)?"
)
_UNITS = {"y": 365 * 86400, "mo": 30 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "mi": 60, "s": 1}
_ACTIONS = {"rotate": "Rotate", "notify": "Notify"}
DEFAULT_NOTIFY = "P30D"
DAY = 86400
# Keyless's bound (Azure documents none): a policy's times stay far inside the 9999-12-31 that
# every client can render.
MAX_DURATION = 100 * 365 * DAY


def duration_seconds(text: Any, field: str) -> int:
    """Seconds in an ISO 8601 duration; 400 ``BadParameter`` if it is not one."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) and len(text) <= 40 else None
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise errors.bad_parameter(f"The value of '{field}' is not a valid ISO 8601 duration.")
    return sum(int(v) * _UNITS[k] for k, v in match.groupdict().items() if v)


class RotationPolicies:
    """Policy rules with a configurable floor (seconds; Azure's is 7 days)."""

    def __init__(self, floor_seconds: float = 7 * DAY) -> None:
        self.floor = float(floor_seconds)

    def parse(self, body: Any) -> dict[str, Any]:
        """The policy to store: ``{"lifetimeActions": [...], "expiryTime": str | None}``."""
        if not isinstance(body, dict):
            raise errors.bad_parameter("The rotation policy must be a JSON object.")
        actions = body.get("lifetimeActions")
        actions = [] if actions is None else actions
        if not isinstance(actions, list) or len(actions) > 2:
            raise errors.bad_parameter("A rotation policy has at most two lifetime actions.")
        attributes = body.get("attributes")
        attributes = {} if attributes is None else attributes
        if not isinstance(attributes, dict):
            raise errors.bad_parameter("The rotation policy attributes must be a JSON object.")
        expiry_text = attributes.get("expiryTime")
        expiry = duration_seconds(expiry_text, "expiryTime") if expiry_text is not None else None
        if expiry is not None and expiry < 4 * self.floor:
            raise errors.bad_parameter("The expiryTime of a rotation policy must be at least 28 days.")
        if expiry is not None and expiry > MAX_DURATION:
            raise errors.bad_parameter("The expiryTime of a rotation policy must be at most 100 years.")
        seen: set[str] = set()
        parsed: list[dict[str, Any]] = []
        for entry in actions:
            if not isinstance(entry, dict) or not isinstance(entry.get("action"), dict):
                raise errors.bad_parameter("Each lifetime action needs an 'action' and a 'trigger'.")
            kind = _ACTIONS.get(str(entry["action"].get("type", "")).lower())
            if kind is None:
                raise errors.bad_parameter("The lifetime action type must be 'Rotate' or 'Notify'.")
            if kind in seen:
                raise errors.bad_parameter(f"A rotation policy may have only one '{kind}' action.")
            seen.add(kind)
            trigger = entry.get("trigger")
            if not isinstance(trigger, dict):
                raise errors.bad_parameter("Each lifetime action needs a 'trigger'.")
            after, before = trigger.get("timeAfterCreate"), trigger.get("timeBeforeExpiry")
            if (after is None) == (before is None):
                raise errors.bad_parameter(
                    "A trigger has exactly one of 'timeAfterCreate' and 'timeBeforeExpiry'."
                )
            if after is not None:
                seconds = duration_seconds(after, "timeAfterCreate")
                if seconds > MAX_DURATION:
                    raise errors.bad_parameter("A rotation time of a policy must be at most 100 years.")
                if seconds < self.floor:
                    raise errors.bad_parameter("The minimum rotation time after creation is 7 days.")
                parsed.append({"trigger": {"timeAfterCreate": after}, "action": {"type": kind}})
            else:
                seconds = duration_seconds(before, "timeBeforeExpiry")
                if seconds > MAX_DURATION:
                    raise errors.bad_parameter("A rotation time of a policy must be at most 100 years.")
                if expiry is None and kind == "Rotate":
                    raise errors.bad_parameter("A 'timeBeforeExpiry' rotation needs the policy's expiryTime.")
                if seconds < self.floor or (expiry is not None and seconds > expiry - self.floor):
                    raise errors.bad_parameter(
                        "The rotation time before expiry must be at least 7 days, and at least 7 days after creation."
                    )
                parsed.append({"trigger": {"timeBeforeExpiry": before}, "action": {"type": kind}})
        return {"lifetimeActions": parsed, "expiryTime": expiry_text}

    def expiry_seconds(self, policy: dict[str, Any] | None) -> int | None:
        if not policy or policy.get("expiryTime") is None:
            return None
        return duration_seconds(policy["expiryTime"], "expiryTime")

    def next_rotation(self, policy: dict[str, Any] | None, created: float, exp: float | None) -> float | None:
        """When the policy's Rotate action fires for a version made at ``created`` expiring at ``exp``."""
        for entry in (policy or {}).get("lifetimeActions") or []:
            if entry["action"]["type"] != "Rotate":
                continue
            trigger = entry["trigger"]
            if "timeAfterCreate" in trigger:
                return created + duration_seconds(trigger["timeAfterCreate"], "timeAfterCreate")
            if exp is not None:
                return exp - duration_seconds(trigger["timeBeforeExpiry"], "timeBeforeExpiry")
        return None

    def schedule(self, conn: sa.Connection, obj: kv.VaultObject, created: float, exp: float | None) -> None:
        """Recompute when ``obj`` next rotates after its latest version changed."""
        if obj.rotation_policy is None:
            return
        kv.set_rotation(conn, obj, obj.rotation_policy, self.next_rotation(obj.rotation_policy, created, exp))

    def store(
        self, conn: sa.Connection, obj: kv.VaultObject, policy: dict[str, Any], latest: kv.Version
    ) -> kv.VaultObject:
        now = time.time()
        stored = dict(policy)
        previous = obj.rotation_policy or {}
        stored["created"] = int(previous.get("created", now))
        stored["updated"] = int(now)
        exp = (latest.document.get("attributes") or {}).get("exp")
        kv.set_rotation(conn, obj, stored, self.next_rotation(stored, latest.created_at, exp))
        fresh = kv.get_object(conn, obj.vault, obj.kind, obj.name)
        assert fresh is not None
        return fresh

    def render(self, vault: Any, obj: kv.VaultObject) -> dict[str, Any]:
        """The policy as GET answers it; a key without one has the default (Notify 30 days before expiry)."""
        policy = obj.rotation_policy
        out: dict[str, Any] = {"id": f"{vault.uri}/keys/{obj.name}/rotationpolicy"}
        if policy is None:
            out["lifetimeActions"] = [
                {"trigger": {"timeBeforeExpiry": DEFAULT_NOTIFY}, "action": {"type": "Notify"}}
            ]
            out["attributes"] = {}
            return out
        out["lifetimeActions"] = policy["lifetimeActions"]
        attributes: dict[str, Any] = {"created": policy["created"], "updated": policy["updated"]}
        if policy.get("expiryTime") is not None:
            attributes["expiryTime"] = policy["expiryTime"]
        out["attributes"] = attributes
        return out

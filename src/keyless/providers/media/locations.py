"""Media Services' location-scoped operations (media.md §1, spec Accounts.json):

- ``POST /subscriptions/{s}/providers/Microsoft.Media/locations/{l}/checkNameAvailability``
  ``{name, type}`` → ``{nameAvailable}`` or ``{nameAvailable: false, reason: AlreadyExists|Invalid,
  message}`` (texts from az recording ``test_ams_check_name.yaml``). RBAC
  ``Microsoft.Media/locations/checkNameAvailability/action`` at the subscription.
- ``GET .../locations/{l}/mediaServicesOperationStatuses/{id}`` → ``{name, id, startTime, endTime,
  status}``; ``GET .../mediaServicesOperationResults/{id}`` → 200 and the account. Both read the
  operation the account PATCH recorded (any replica answers); its initiator may always poll it,
  anyone else needs ``Microsoft.Media/mediaservices/read`` on the account.
"""

from __future__ import annotations

from typing import Any

import orjson

from keyless.arm import errors
from keyless.arm.bodies import parse_body
from keyless.arm.engine import Reply, ResourceManager, iso_time
from keyless.arm.http import ProviderRequest
from keyless.arm.locations import REGIONS, normalize_location
from keyless.arm.resource_types import ResourceType
from keyless.providers.media.accounts import (
    ACCOUNT_TYPE,
    NAME_RULE_TEXT,
    is_valid_name,
    name_taken,
    taken_message,
)

_MAX_NAME = 1024


class LocationOperations:
    def __init__(self, manager: ResourceManager, account_type: ResourceType) -> None:
        self.manager = manager
        self.account_type = account_type

    def handle(self, req: ProviderRequest) -> Reply | None:
        seg = [s.lower() for s in req.segments]
        if req.scope.resource_group is not None or len(seg) < 3:
            return None
        location = normalize_location(req.segments[1])
        if location not in REGIONS:
            raise errors.invalid_location(req.segments[1], ACCOUNT_TYPE, REGIONS)
        self.manager.check_api_version(self.account_type, req.ctx)
        if seg[2] == "checknameavailability" and len(seg) == 3:
            if req.method != "POST":
                raise errors.method_not_allowed(req.method)
            return self._check_name(req, location)
        if seg[2] in ("mediaservicesoperationstatuses", "mediaservicesoperationresults") and len(seg) == 4:
            if req.method != "GET":
                raise errors.method_not_allowed(req.method)
            return self._operation(
                req, req.segments[3], status_only=seg[2] == "mediaservicesoperationstatuses"
            )
        raise errors.no_route(req.path)

    def _check_name(self, req: ProviderRequest, location: str) -> Reply:
        sub = req.scope.subscription_id
        self.manager.authorizer.check(
            req.ctx.caller, "Microsoft.Media/locations/checkNameAvailability/action", f"/subscriptions/{sub}"
        )
        body = parse_body(req.body)
        name, kind = body.get("name"), body.get("type")
        if not isinstance(name, str) or len(name) > _MAX_NAME:
            raise errors.ArmError(
                400, "BadRequest", "The 'name' of the request must be a string.", target="name"
            )
        if kind is not None and (
            not isinstance(kind, str) or kind.lower() not in (ACCOUNT_TYPE.lower(), "mediaservices")
        ):
            raise errors.ArmError(
                400, "BadRequest", f"The 'type' of the request must be '{ACCOUNT_TYPE}'.", target="type"
            )
        if not is_valid_name(name):
            return Reply(200, {"nameAvailable": False, "reason": "Invalid", "message": NAME_RULE_TEXT})
        with self.manager.db.read() as conn:
            self.manager.require_subscription(conn, sub)
            taken = name_taken(conn, location, name)
        if taken:
            return Reply(
                200, {"nameAvailable": False, "reason": "AlreadyExists", "message": taken_message(name)}
            )
        return Reply(200, {"nameAvailable": True})

    def _operation(self, req: ProviderRequest, operation_id: str, *, status_only: bool) -> Reply:
        row = (
            self.manager.operation(req.scope.subscription_id, operation_id)
            if len(operation_id) <= 64
            else None
        )
        if row is None:
            raise errors.ArmError(404, "NotFound", f"The operation '{operation_id[:64]}' was not found.")
        if row.started_by != req.ctx.caller.object_id:
            self.manager.authorizer.check(
                req.ctx.caller, self.account_type.operation("read"), row.resource_id
            )
        if status_only:
            body: dict[str, Any] = {
                "name": operation_id,
                "id": req.path,
                "startTime": iso_time(row.started_at),
                "endTime": iso_time(row.ended_at or row.started_at),
                "status": row.status,
            }
            return Reply(200, body)
        return Reply(row.result_status or 200, orjson.loads(row.result_body) if row.result_body else None)

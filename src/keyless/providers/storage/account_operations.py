"""Storage's provider operations that the generic resource path does not answer
(``ArmApp.provider_operations``):

- ``POST /subscriptions/{s}/providers/Microsoft.Storage/checkNameAvailability`` body ``{name,
  type: "Microsoft.Storage/storageAccounts"}`` → 200 ``{nameAvailable: true}`` or ``{nameAvailable:
  false, reason: AccountNameInvalid|AlreadyExists, message}`` (spec ``CheckNameAvailabilityResult``
  and example ``StorageAccountCheckNameAvailability.json``; messages as ``account_names``). RBAC
  ``Microsoft.Storage/checkNameAvailability/read`` at the subscription. A missing name or another
  ``type``: 400 ``InvalidValuesForRequestParameters`` (the storage RP's code for a bad parameter;
  the exact text for these fields was not found).
- ``PUT .../storageAccounts/{name}`` that CREATES an account: 202 with no body, ``Location`` (the
  resource manager's ``operationresults`` URL, kept in the database so any replica answers the
  poll) and ``Retry-After: 0``; polling it gives 200 and the account. That is the storage RP's
  answer (spec ``StorageAccounts_Create``: 200 or 202, ``x-ms-long-running-operation``; the
  real Location is ``.../locations/{l}/asyncoperations/{id}``), and azure-mgmt-storage's
  ``begin_create`` poller (``ARMPolling`` with Location polling: the last poll's body is the
  result) and ``az storage account create`` accept it. A PUT that updates answers 200 with the
  account at once. Everything else about the PUT (auth, validation, errors) is the engine's.
"""

from __future__ import annotations

from keyless.arm import errors
from keyless.arm.bodies import parse_body
from keyless.arm.engine import Reply, ResourceManager
from keyless.arm.http import ProviderOperation, ProviderRequest
from keyless.arm.ids import ResourceId
from keyless.providers.storage import account_names
from keyless.providers.storage.accounts import ACCOUNT_TYPE, API_VERSIONS, NAMESPACE

_MAX_NAME = 1024  # nothing longer than a resource id is echoed back


def _bad_parameter(name: str) -> errors.ArmError:
    return errors.ArmError(
        400,
        "InvalidValuesForRequestParameters",
        f"Values for request parameters are invalid: {name}.",
        target=name,
    )


class StorageOperations:
    """The handlers, bound to the resource manager."""

    def __init__(self, manager: ResourceManager) -> None:
        self.manager = manager

    def register(self, operations: dict[tuple[str, str], ProviderOperation]) -> None:
        """Add the handlers to ``ArmApp.provider_operations``."""
        ns = NAMESPACE.lower()
        operations[(ns, "checknameavailability")] = self.check_name_availability
        operations[(ns, "storageaccounts")] = self.create

    # --- checkNameAvailability -----------------------------------------------------------

    def check_name_availability(self, req: ProviderRequest) -> Reply | None:
        if req.scope.resource_group is not None or len(req.segments) != 1:
            return None
        if req.method != "POST":
            raise errors.method_not_allowed(req.method)
        if req.ctx.api_version not in API_VERSIONS:
            raise errors.no_registered_provider(
                "global", req.ctx.api_version, f"{NAMESPACE}/checkNameAvailability", API_VERSIONS
            )
        sub = req.scope.subscription_id
        self.manager.authorizer.check(
            req.ctx.caller, f"{NAMESPACE}/checkNameAvailability/read", f"/subscriptions/{sub}"
        )
        body = parse_body(req.body)
        name, kind = body.get("name"), body.get("type")
        if not isinstance(name, str) or not name or len(name) > _MAX_NAME:
            raise _bad_parameter("name")
        if not isinstance(kind, str) or kind.lower() != ACCOUNT_TYPE.lower():
            raise _bad_parameter("type")
        with self.manager.db.read() as conn:
            self.manager.require_subscription(conn, sub)
            if not account_names.is_valid_name(name):
                message = account_names.name_invalid_message(name)
                return Reply(
                    200, {"nameAvailable": False, "reason": "AccountNameInvalid", "message": message}
                )
            holder = account_names.lookup(conn, name)
        if holder is not None:
            message = account_names.taken_message(name)
            return Reply(200, {"nameAvailable": False, "reason": "AlreadyExists", "message": message})
        return Reply(200, {"nameAvailable": True})

    # --- create: the long-running PUT ----------------------------------------------------

    def create(self, req: ProviderRequest) -> Reply | None:
        """A PUT of one account; None (the generic path) for every other request."""
        seg = req.segments
        if req.method != "PUT" or req.scope.resource_group is None or len(seg) != 2:
            return None
        rid = ResourceId(
            req.scope.subscription_id, req.scope.resource_group, req.namespace, (seg[0],), (seg[1],)
        )
        reply = self.manager.put(req.ctx, rid, req.body)
        if reply.status != 201:
            return reply
        with self.manager.db.write() as conn:
            operation_id = self.manager.record_operation(
                conn, rid, Reply(200, reply.body), req.ctx.caller.object_id
            )
        location = (
            f"{req.ctx.base_url}/subscriptions/{rid.subscription_id}/operationresults/{operation_id}"
            f"?api-version={req.ctx.api_version}"
        )
        return Reply(202, None, {"Location": location, "Retry-After": "0"})

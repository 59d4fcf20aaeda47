"""ARM errors: the envelope ``{"error": {"code", "message", ...}}`` and every code Keyless uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ArmError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        return {"error": error}


def missing_api_version() -> ArmError:
    return ArmError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def invalid_api_version(version: str, supported: Iterable[str]) -> ArmError:
    listed = ",".join(sorted(supported, reverse=True))
    return ArmError(
        400,
        "InvalidApiVersionParameter",
        f"The api-version '{version}' is invalid. The supported versions are '{listed}'.",
    )


def invalid_resource_type(namespace: str, type_name: str) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceType",
        f"The resource type '{type_name}' could not be found in the namespace '{namespace}'.",
    )


def namespace_not_found(namespace: str) -> ArmError:
    return ArmError(
        404,
        "InvalidResourceNamespace",
        f"The resource namespace '{namespace}' is invalid.",
    )


def subscription_not_found(subscription_id: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")


def invalid_subscription_id(subscription_id: str) -> ArmError:
    return ArmError(
        400,
        "InvalidSubscriptionId",
        f"The provided subscription identifier '{subscription_id}' is malformed or invalid.",
    )


def resource_group_not_found(group: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")


def resource_not_found(type_name: str, name: str, group: str | None) -> ArmError:
    where = f" under resource group '{group}'" if group else ""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{type_name}/{name}'{where} was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def invalid_request_content(detail: str) -> ArmError:
    return ArmError(
        400,
        "InvalidRequestContent",
        f"The request content was invalid and could not be deserialized: '{detail}'.",
    )


def invalid_resource_name(name: str, type_name: str, rule: str) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceName",
        f"The resource name '{name}' is invalid for type '{type_name}'. {rule}",
    )


def invalid_resource_group_name(name: str) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceGroup",
        f"The provided resource group name '{name}' has these invalid characters: '{_bad_chars(name)}'. "
        "The name can only be a letter, digit, '-', '.', '(', ')' or '_', at most 90 characters, "
        "and cannot end in '.'.",
    )


def _bad_chars(name: str) -> str:
    return "".join(sorted({c for c in name if not (c.isalnum() or c in "-._()")}))


def no_registered_provider(location: str, version: str, type_name: str, supported: Iterable[str]) -> ArmError:
    listed = ", ".join(sorted(supported, reverse=True))
    return ArmError(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location '{location}' and API version '{version}' "
        f"for type '{type_name}'. The supported api-versions are '{listed}'. "
        "The supported locations are 'any'.",
    )


def location_required() -> ArmError:
    return ArmError(400, "LocationRequired", "The location property is required for this definition.")


def invalid_location(location: str, type_name: str, regions: Iterable[str]) -> ArmError:
    listed = ",".join(sorted(regions))
    if type_name.lower() == "microsoft.resources/resourcegroups":
        return ArmError(
            400,
            "LocationNotAvailableForResourceGroup",
            f"The provided location '{location}' is not available for resource group. "
            f"List of available regions is '{listed}'.",
        )
    return ArmError(
        400,
        "LocationNotAvailableForResourceType",
        f"The provided location '{location}' is not available for resource type '{type_name}'. "
        f"List of available regions for the resource type is '{listed}'.",
    )


def location_conflict(
    name: str, group: str | None, is_group: bool, existing: str, requested: str
) -> ArmError:
    """A resource's location cannot change (409, as ARM answers)."""
    if is_group:
        return ArmError(
            409,
            "InvalidResourceGroupLocation",
            f"Invalid resource group location '{requested}'. The Resource group already exists in location "
            f"'{existing}'.",
        )
    return ArmError(
        409,
        "InvalidResourceLocation",
        f"The resource '{name}' already exists in location '{existing}' in resource group '{group}'. A resource "
        f"with the same name cannot be created in location '{requested}'. Please select a new resource name.",
    )


def precondition_failed(detail: str) -> ArmError:
    return ArmError(412, "PreconditionFailed", detail)


def method_not_allowed(method: str) -> ArmError:
    return ArmError(405, "MethodNotAllowed", f"The HTTP method '{method}' is not supported at this path.")


def bad_request(message: str, code: str = "BadRequest", target: str | None = None) -> ArmError:
    return ArmError(400, code, message, target=target)


def invalid_url() -> ArmError:
    """A URL no resource can answer: a NUL in its path or query (400, as Azure's front end answers)."""
    return ArmError(400, "BadRequest", "Bad Request - Invalid URL: the request URL contains a NUL character.")


def no_route(path: str) -> ArmError:
    return ArmError(404, "NotFound", f"No HTTP resource was found that matches the request URI '{path}'.")

"""OAuth2 errors with Entra's AADSTS codes: the single place their texts live."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any


class OAuthError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description

    def body(self, correlation_id: str | None = None) -> dict[str, Any]:
        trace_id = str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.description}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
            ),
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


def tenant_not_found(tenant: str, error: str = "invalid_tenant") -> OAuthError:
    """``invalid_tenant`` from discovery; the token endpoint says ``invalid_request``."""
    return OAuthError(
        400,
        error,
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud. Check with your subscription administrator, this may happen if there are "
        "no active subscriptions for the tenant.",
    )


def missing_parameter(name: str) -> OAuthError:
    return OAuthError(
        400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
    )


def unsupported_grant_type(grant_type: str) -> OAuthError:
    return OAuthError(
        400,
        "unsupported_grant_type",
        70003,
        f"The app requested an unsupported grant type '{grant_type}'.",
    )


def application_not_found(client_id: str, tenant: str) -> OAuthError:
    return OAuthError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented "
        "to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
    )


def invalid_client_secret(client_id: str) -> OAuthError:
    return OAuthError(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
        f"value, not the client secret ID, for a secret added to app '{client_id}'.",
    )


def missing_client_credential() -> OAuthError:
    return OAuthError(
        401,
        "invalid_client",
        7000216,
        "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
    )


def invalid_scope_format(scope: str) -> OAuthError:
    return OAuthError(
        400,
        "invalid_scope",
        1002012,
        f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
        "with /.default suffixed to the resource identifier (application ID URI).",
    )


def invalid_scope(scope: str) -> OAuthError:
    """AADSTS70011, Entra's text (Azure/azure-sdk-for-net#9076): several resources in one request."""
    return OAuthError(
        400,
        "invalid_scope",
        70011,
        "The provided request must include a 'scope' input parameter. The provided value for the input "
        f"parameter 'scope' is not valid. The scope {scope} is not valid.",
    )


def resource_not_found(resource: str, tenant: str) -> OAuthError:
    return OAuthError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant named {tenant}. This can happen "
        "if the application has not been installed by the administrator of the tenant or consented to by any "
        "user in the tenant. You might have sent your authentication request to the wrong tenant.",
    )


def invalid_client_assertion(reason: str) -> OAuthError:
    return OAuthError(
        401, "invalid_client", 700027, f"Client assertion contains an invalid signature. {reason}"
    )


def malformed_request() -> OAuthError:
    """Input no directory value can hold (a NUL in the URL or a form field): Entra's generic 400."""
    return OAuthError(400, "invalid_request", 9002313, "Invalid request. Request is malformed or invalid.")

"""Microsoft Graph's errors: ``{"error": {"code", "message", "innerError": {...}}}``.

Codes and texts as Graph answers them (Microsoft Graph docs, "Microsoft Graph error responses
and resource types"; az's ``GraphError`` reads ``error.code`` and ``error.message``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self, client_request_id: str | None = None) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": request_id,
                    "client-request-id": client_request_id or request_id,
                },
            }
        }


def _shown(value: str) -> str:
    return value if len(value) <= 200 else value[:200] + "..."


def not_found(object_id: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{_shown(object_id)}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def invalid_object_id(value: str) -> GraphError:
    return GraphError(400, "Request_BadRequest", f"Invalid object identifier '{_shown(value)}'.")


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def no_segment(segment: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{_shown(segment)}'.")


def method_not_allowed() -> GraphError:
    return GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request uri.")


def invalid_json() -> GraphError:
    return GraphError(
        400,
        "BadRequest",
        "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
        "valid JSON format.",
    )


def invalid_filter(text: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid filter clause: {_shown(text)}")


def unsupported_filter(prop: str, resource: str) -> GraphError:
    return GraphError(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{_shown(prop)}' of resource "
        f"'{resource}'.",
    )


def access_denied() -> GraphError:
    return GraphError(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def invalid_token(message: str) -> GraphError:
    return GraphError(401, "InvalidAuthenticationToken", message)

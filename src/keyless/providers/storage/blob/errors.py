"""The Blob service's errors: one exception, its XML body, and the texts Azure uses.

Wire shape (storage.md §2 "Error body"): ``<?xml version="1.0" encoding="utf-8"?><Error><Code>X</Code>
<Message>text\\nRequestId:…\\nTime:…</Message>…details…</Error>``, ``Content-Type: application/xml``
and the code again in ``x-ms-error-code``. Texts are the REST docs' "Blob service error codes"
and "Common REST API error codes" tables (MicrosoftDocs/azure-docs, storage/blobs); the 401/403
texts are storage.md §1's table.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

XML_TYPE = b"application/xml"


class StorageError(Exception):
    """A refused request: HTTP ``status``, ``code`` (also ``x-ms-error-code``), ``message``; extra
    response ``headers`` (e.g. ``WWW-Authenticate``) and extra XML elements ``details`` (name, text)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = list(details or [])

    def body(self, request_id: str, time_text: str) -> bytes:
        """The XML error document (the message carries RequestId and Time lines, as Azure's does)."""
        extra = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in self.details)
        message = escape(f"{self.message}\nRequestId:{request_id}\nTime:{time_text}")
        return (
            f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{self.code}</Code>'
            f"<Message>{message}</Message>{extra}</Error>"
        ).encode()


def _shown(value: str) -> str:
    return value if len(value) <= 256 else value[:256] + "..."


def invalid_header(name: str, value: str) -> StorageError:
    return StorageError(
        400,
        "InvalidHeaderValue",
        "The value for one of the HTTP headers is not in the correct format.",
        details=[("HeaderName", name), ("HeaderValue", _shown(value))],
    )


def missing_header(name: str) -> StorageError:
    return StorageError(
        400,
        "MissingRequiredHeader",
        "An HTTP header that's mandatory for this request is not specified.",
        details=[("HeaderName", name)],
    )


def invalid_query(name: str, value: str, reason: str = "") -> StorageError:
    details = [("QueryParameterName", name), ("QueryParameterValue", _shown(value))]
    if reason:
        details.append(("Reason", reason))
    return StorageError(
        400,
        "InvalidQueryParameterValue",
        "Value for one of the query parameters specified in the request URI is invalid.",
        details=details,
    )


def out_of_range(name: str | None = None, value: str | None = None) -> StorageError:
    details = [("HeaderName", name), ("HeaderValue", _shown(value or ""))] if name else []
    return StorageError(400, "OutOfRangeInput", "One of the request inputs is out of range.", details=details)


def invalid_input(message: str = "One of the request inputs is not valid.") -> StorageError:
    return StorageError(400, "InvalidInput", message)


def invalid_resource_name() -> StorageError:
    # "specifed" is Azure's own spelling of this message.
    return StorageError(400, "InvalidResourceName", "The specifed resource name contains invalid characters.")


def invalid_uri() -> StorageError:
    return StorageError(400, "InvalidUri", "The requested URI does not represent any resource on the server.")


def unsupported_verb() -> StorageError:
    return StorageError(405, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.")


def invalid_xml() -> StorageError:
    return StorageError(400, "InvalidXmlDocument", "XML specified is not syntactically valid.")


def body_too_large(limit: int) -> StorageError:
    return StorageError(
        413,
        "RequestBodyTooLarge",
        "The request body is too large and exceeds the maximum permissible limit.",
        details=[("MaxLimit", str(limit))],
    )


def missing_content_length() -> StorageError:
    return StorageError(411, "MissingContentLengthHeader", "Content-Length HTTP header is missing")


def incomplete_body() -> StorageError:
    return StorageError(
        400, "InvalidInput", "The request body is shorter than the Content-Length header says."
    )


def account_not_found() -> StorageError:
    # Azure's DNS has no name for an unknown account; a served host answers as for a missing resource.
    return StorageError(404, "ResourceNotFound", "The specified resource does not exist.")


def resource_not_found() -> StorageError:
    return StorageError(404, "ResourceNotFound", "The specified resource does not exist.")


def container_not_found() -> StorageError:
    return StorageError(404, "ContainerNotFound", "The specified container does not exist.")


def container_exists() -> StorageError:
    return StorageError(409, "ContainerAlreadyExists", "The specified container already exists.")


def blob_not_found() -> StorageError:
    return StorageError(404, "BlobNotFound", "The specified blob does not exist.")


def blob_exists() -> StorageError:
    return StorageError(409, "BlobAlreadyExists", "The specified blob already exists.")


def condition_not_met() -> StorageError:
    return StorageError(
        412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met."
    )


def invalid_range(size: int) -> StorageError:
    return StorageError(
        416,
        "InvalidRange",
        "The range specified is invalid for the current size of the resource.",
        headers={"Content-Range": f"bytes */{size}"},
    )


def md5_mismatch(given: str, computed: str) -> StorageError:
    return StorageError(
        400,
        "Md5Mismatch",
        "The MD5 value specified in the request did not match with the MD5 value calculated by the server.",
        details=[("UserSpecifiedMd5", given), ("ServerCalculatedMd5", computed)],
    )


def crc64_mismatch(given: str, computed: str) -> StorageError:
    return StorageError(
        400,
        "Crc64Mismatch",
        "The CRC64 value specified in the request did not match with the CRC64 value calculated by the server.",
        details=[("UserSpecifiedCrc64", given), ("ServerCalculatedCrc64", computed)],
    )


def invalid_block_id() -> StorageError:
    return StorageError(
        400, "InvalidBlockId", "The specified block ID is invalid. The block ID must be Base64-encoded."
    )


def invalid_block_list() -> StorageError:
    return StorageError(400, "InvalidBlockList", "The specified block list is invalid.")


def block_count_exceeded() -> StorageError:
    return StorageError(
        409,
        "BlockCountExceedsLimit",
        "The uncommitted block count cannot exceed the maximum limit of 100,000 blocks.",
    )


def block_list_too_long() -> StorageError:
    return StorageError(400, "BlockListTooLong", "The block list may not contain more than 50,000 blocks.")


def invalid_metadata() -> StorageError:
    return StorageError(
        400, "InvalidMetadata", "The metadata specified is invalid. It has characters that are not permitted."
    )


def metadata_too_large() -> StorageError:
    return StorageError(
        400, "MetadataTooLarge", "The size of the request metadata exceeds the maximum size permitted."
    )


def invalid_tag() -> StorageError:
    return StorageError(
        400, "InvalidTag", "The tags specified are invalid. It contains characters that are not permitted."
    )


def tags_too_large() -> StorageError:
    return StorageError(400, "TagsTooLarge", "The tags specified exceed the maximum permissible limit.")


def snapshots_present() -> StorageError:
    return StorageError(
        409, "SnapshotsPresent", "This operation is not permitted because the blob has snapshots."
    )


def public_access_not_permitted() -> StorageError:
    return StorageError(
        409, "PublicAccessNotPermitted", "Public access is not permitted on this storage account."
    )


# --- authentication and authorization (storage.md §1) ------------------------------------------


def authorization_failure() -> StorageError:
    return StorageError(
        403, "AuthorizationFailure", "This request is not authorized to perform this operation."
    )


def permission_mismatch() -> StorageError:
    return StorageError(
        403,
        "AuthorizationPermissionMismatch",
        "This request is not authorized to perform this operation using this permission.",
    )


def resource_type_mismatch() -> StorageError:
    return StorageError(
        403,
        "AuthorizationResourceTypeMismatch",
        "This request is not authorized to perform this operation using this resource type.",
    )


def service_mismatch() -> StorageError:
    return StorageError(
        403,
        "AuthorizationServiceMismatch",
        "This request is not authorized to perform this operation using this service.",
    )


def source_ip_mismatch(address: str) -> StorageError:
    return StorageError(
        403,
        "AuthorizationSourceIPMismatch",
        f"This request is not authorized to perform this operation using this source IP {address}.",
    )


def key_auth_not_permitted() -> StorageError:
    return StorageError(
        403,
        "KeyBasedAuthenticationNotPermitted",
        "Key based authentication is not permitted on this storage account.",
    )


def _challenge(tenant_id: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": f"Bearer authorization_uri=https://login.microsoftonline.com/{tenant_id}/oauth2/authorize "
        "resource_id=https://storage.azure.com"
    }


def invalid_authentication_info(tenant_id: str, detail: str) -> StorageError:
    return StorageError(
        401,
        "InvalidAuthenticationInfo",
        "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        headers=_challenge(tenant_id),
        details=[("AuthenticationErrorDetail", detail)],
    )


def no_authentication_information(tenant_id: str) -> StorageError:
    return StorageError(
        401,
        "NoAuthenticationInformation",
        "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        headers=_challenge(tenant_id),
    )


def authentication_failed(detail: str) -> StorageError:
    return StorageError(
        403,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization header is formed "
        "correctly including the signature.",
        details=[("AuthenticationErrorDetail", detail)],
    )


# --- leases ----------------------------------------------------------------------------------


def lease_error(status: int, code: str, what: str) -> StorageError:
    """A lease refusal; ``what`` is "blob" or "container" (Azure's texts name which)."""
    texts = {
        "LeaseIdMissing": f"There is currently a lease on the {what} and no lease ID was specified in the request.",
        "LeaseIdMismatchWithBlobOperation": "The lease ID specified did not match the lease ID for the blob.",
        "LeaseIdMismatchWithContainerOperation": "The lease ID specified did not match the lease ID for the container.",
        "LeaseNotPresentWithBlobOperation": "There is currently no lease on the blob.",
        "LeaseNotPresentWithContainerOperation": "There is currently no lease on the container.",
        "LeaseAlreadyPresent": "There is already a lease present.",
        "LeaseNotPresentWithLeaseOperation": f"There is currently no lease on the {what}.",
        "LeaseIdMismatchWithLeaseOperation": f"The lease ID specified did not match the lease ID for the {what}.",
        "LeaseIsBrokenAndCannotBeRenewed": "The lease ID matched, but the lease has been broken explicitly and "
        "cannot be renewed.",
        "LeaseIsBreakingAndCannotBeAcquired": "The lease ID matched, but the lease is currently in breaking state "
        "and cannot be acquired until it is broken.",
        "LeaseIsBreakingAndCannotBeChanged": "The lease ID matched, but the lease is currently in breaking state "
        "and cannot be changed.",
    }
    return StorageError(status, code, texts.get(code, "The lease operation is not valid."))

"""Service-level operations: Get Blob Service Properties, Get Account Information, Get User
Delegation Key (REST docs of each; the key's response shape: storage.md §2).

The user delegation key is never stored: its value is ``sas.derive_user_delegation_key`` of the
signed fields under a secret derived from the root key, so any replica re-derives it when a SAS
signed with it arrives. Bounds (REST docs "Get User Delegation Key"): the expiry at most 7 days
from now and after the start; 400 ``InvalidXmlNodeValue`` otherwise (Azure's code for a node whose
value it refuses; the exact text is not documented).
"""

from __future__ import annotations

from keyless.authority.tokens import Caller
from keyless.providers.storage.accounts import AccountView
from keyless.providers.storage.blob import errors, sas
from keyless.providers.storage.blob.request import BlobRequest, Reply
from keyless.providers.storage.blob.xml import XML_DECLARATION, el, iso_seconds, parse, parse_iso, text
from keyless.web import BodyTooLarge, read_body

MAX_KEY_INFO = 4096
MAX_KEY_LIFETIME = 7 * 86400

_SERVICE_PROPERTIES = (
    XML_DECLARATION + "<StorageServiceProperties>"
    "<Logging><Version>1.0</Version><Read>false</Read><Write>false</Write><Delete>false</Delete>"
    "<RetentionPolicy><Enabled>false</Enabled></RetentionPolicy></Logging>"
    "<HourMetrics><Version>1.0</Version><Enabled>false</Enabled><RetentionPolicy><Enabled>false</Enabled>"
    "</RetentionPolicy></HourMetrics>"
    "<MinuteMetrics><Version>1.0</Version><Enabled>false</Enabled><RetentionPolicy><Enabled>false</Enabled>"
    "</RetentionPolicy></MinuteMetrics>"
    "<Cors /><DeleteRetentionPolicy><Enabled>false</Enabled></DeleteRetentionPolicy>"
    "<StaticWebsite><Enabled>false</Enabled></StaticWebsite>"
    "</StorageServiceProperties>"
).encode()


def service_properties() -> Reply:
    """Keyless's fixed service properties: logging, metrics, CORS, soft delete and static website off."""
    return Reply(200, {}, _SERVICE_PROPERTIES, errors.XML_TYPE)


def account_info(account: AccountView) -> Reply:
    sku = account.properties.get("sku") if isinstance(account.properties.get("sku"), dict) else None
    return Reply(
        200,
        {
            "x-ms-sku-name": str((sku or {}).get("name") or "Standard_LRS"),
            "x-ms-account-kind": str(account.properties.get("kind") or "StorageV2"),
            "x-ms-is-hns-enabled": "true" if account.properties.get("isHnsEnabled") else "false",
        },
    )


def _node_error(node: str) -> errors.StorageError:
    return errors.StorageError(
        400,
        "InvalidXmlNodeValue",
        "The value for one of the XML nodes is not in the correct format.",
        details=[("XmlNodeName", node)],
    )


async def user_delegation_key(req: BlobRequest, account: AccountView, caller: Caller, secret: bytes) -> Reply:
    """Get User Delegation Key for the bearer ``caller`` (RBAC was checked by the route)."""
    try:
        raw = await read_body(req.receive, MAX_KEY_INFO)
    except BodyTooLarge:
        raise errors.body_too_large(MAX_KEY_INFO) from None
    root = parse(raw)
    if root.tag != "KeyInfo":
        raise errors.invalid_xml()
    start_text, expiry_text = text(root.find("Start")).strip(), text(root.find("Expiry")).strip()
    if not expiry_text:
        raise _node_error("Expiry")
    expiry = parse_iso(expiry_text)
    if expiry is None:
        raise _node_error("Expiry")
    start = parse_iso(start_text) if start_text else req.now
    if start is None:
        raise _node_error("Start")
    if expiry <= start or expiry > req.now + MAX_KEY_LIFETIME + 60 or expiry <= req.now:
        raise _node_error("Expiry")
    version = req.headers.get("x-ms-version") or "2026-10-06"
    delegated_tid = text(root.find("DelegatedUserTid")).strip()
    key = sas.SignedKey(
        oid=caller.object_id,
        tid=caller.tenant_id,
        start=iso_seconds(start),
        expiry=iso_seconds(expiry),
        service="b",
        version=version,
        delegated_user_tid=delegated_tid,
    )
    value = sas.user_delegation_key_value(secret, account.name, key)
    body = (
        XML_DECLARATION + "<UserDelegationKey>"
        + el("SignedOid", key.oid) + el("SignedTid", key.tid) + el("SignedStart", key.start)
        + el("SignedExpiry", key.expiry) + el("SignedService", key.service) + el("SignedVersion", key.version)
        + (el("SignedDelegatedUserTid", delegated_tid) if delegated_tid else "")
        + el("Value", value) + "</UserDelegationKey>"
    )  # fmt: skip
    return Reply(200, {}, body.encode(), errors.XML_TYPE)

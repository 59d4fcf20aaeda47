"""Which resources (audiences) the authority issues tokens for, and how a request names one.

A token may be asked for:

- an Azure first-party resource that accepts Microsoft Entra tokens, by its application ID URI
  or its appId (the list below);
- per-instance hosts of those services (``https://<vault>.vault.azure.net``, …);
- any app registration / service principal of the tenant: its appId, ``api://{appId}`` or one of
  its identifier URIs (resolved by the authority against the directory, not here).

Sources for the list: Microsoft Learn, "Azure services that can use managed identities to access
other services" (entra-docs ``managed-identities-status.md``) and "Azure services that support
Microsoft Entra authentication" (``services-id-authentication-support.md``), with each service's
own "authenticate with Microsoft Entra ID" page for its resource URI; appIds as Entra lists them
for Microsoft's first-party apps (only the ones we are sure of: a GUID not listed is answered
with AADSTS500011, as for any unknown resource).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from keyless.arm.ids import is_guid
from keyless.authority import errors

# Application ID URI (lower case, no trailing slash) -> appId ("" where not pinned down here).
FIRST_PARTY: dict[str, str] = {
    "https://management.azure.com": "797f4846-ba00-4fd7-ba43-dac1f8f63013",  # Resource Manager
    "https://management.core.windows.net": "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    "https://vault.azure.net": "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",  # Key Vault
    "https://managedhsm.azure.net": "",
    "https://storage.azure.com": "e406a681-f3d4-42a8-90b6-c2b029497af1",  # Storage
    "https://graph.microsoft.com": "00000003-0000-0000-c000-000000000000",  # Microsoft Graph
    "https://graph.windows.net": "00000002-0000-0000-c000-000000000000",  # Azure AD Graph (legacy)
    "https://database.windows.net": "022907d3-0f1b-48f7-badc-1ba6abab6d66",  # Azure SQL, Synapse SQL
    "https://ossrdbms-aad.database.windows.net": "",  # PostgreSQL / MySQL flexible servers
    "https://cognitiveservices.azure.com": "7d312290-28c8-473c-a0ed-8e53749b6d6d",  # AI services, OpenAI
    "https://ai.azure.com": "",
    "https://eventhubs.azure.net": "80369ed6-5f11-4dd9-bef3-692475845e77",  # Event Hubs
    "https://servicebus.azure.net": "80a10ef9-8168-493d-abf9-3297c4ef6e3c",  # Service Bus
    "https://relay.azure.net": "",
    "https://eventgrid.azure.net": "",
    "https://datalake.azure.net": "e9f49c6b-5ce5-44c8-925d-015017e9f7ad",  # Data Lake
    "https://dev.azuresynapse.net": "",  # Synapse workspaces
    "https://kusto.kusto.windows.net": "2746ea77-4702-4b45-80ca-3c97e680e8b7",  # Data Explorer
    "https://api.loganalytics.io": "ca7f3f0b-7d91-482c-8e09-c5d840d0eac5",  # Monitor Logs
    "https://monitor.azure.com": "",  # Monitor ingestion and metrics
    "https://api.applicationinsights.io": "",
    "https://batch.core.windows.net": "ddbf3205-c6bd-46ae-8127-60eb93363864",  # Batch
    "https://rest.media.azure.net": "",  # Media Services
    "https://azconfig.io": "",  # App Configuration
    "https://cosmos.azure.com": "",  # Cosmos DB data plane
    "https://search.azure.com": "",  # AI Search
    "https://digitaltwins.azure.net": "",
    "https://iothubs.azure.net": "",
    "https://signalr.azure.com": "",
    "https://webpubsub.azure.com": "",
    "https://atlas.microsoft.com": "",  # Maps
    "https://purview.azure.net": "",
    "https://attest.azure.net": "",
    "https://redis.azure.com": "",  # Azure Cache for Redis
    "https://analysis.windows.net/powerbi/api": "",
    # Azure DevOps has no URI form: it is asked for by appId.
}
FIRST_PARTY_APP_IDS: frozenset[str] = frozenset(
    {app_id for app_id in FIRST_PARTY.values() if app_id} | {"499b84ac-1321-427f-aa17-267ca6975798"}
)

# Workload identity federation's audience: tokens for it are v2.0 tokens whose ``aud`` is the
# appId of the "AAD Token Exchange Endpoint" app (Entra puts the appId in every v2.0 token's aud;
# access-token-claims-reference.md). A federated credential names it by the URI.
EXCHANGE_URI = "api://azureadtokenexchange"
EXCHANGE_APP_ID = "fb60f99c-7a34-4190-8149-302f77469936"

# Per-instance audiences are accepted too, as Entra does for these services.
_INSTANCE_RESOURCE = re.compile(
    r"https://[a-z0-9-]{1,63}\.("
    r"(blob|queue|table|file|dfs)\.core\.windows\.net|vault\.azure\.net|managedhsm\.azure\.net"
    r"|azconfig\.io|documents\.azure\.com|search\.windows\.net"
    r"|[a-z0-9-]{1,63}\.kusto\.windows\.net)",
    re.IGNORECASE,
)

# What the resource manager accepts as ``aud`` (lower case, no trailing slash).
ARM_AUDIENCES: frozenset[str] = frozenset(
    {"https://management.azure.com", "https://management.core.windows.net"}
)
# What Microsoft Graph accepts as ``aud``.
GRAPH_AUDIENCES: frozenset[str] = frozenset(
    {"https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"}
)

# What Key Vault's data plane accepts as ``aud``: the resource and Key Vault's first-party appId.
KEYVAULT_AUDIENCES: frozenset[str] = frozenset(
    {"https://vault.azure.net", "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"}
)

# What Storage's data plane accepts as ``aud`` besides an account's own URL
# (``https://{account}.blob.core.windows.net``): the resource and Storage's first-party appId.
STORAGE_AUDIENCES: frozenset[str] = frozenset(
    {"https://storage.azure.com", "e406a681-f3d4-42a8-90b6-c2b029497af1"}
)

# Scopes MSAL adds to every request (its "reserved" scopes); Entra ignores them for client credentials.
_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access"})
_DEFAULT_SUFFIX = "/.default"
_MAX_SCOPE = 4096


@dataclass(frozen=True)
class Audience:
    """What a token for a requested resource carries: ``aud`` and the token version (1 or 2)."""

    aud: str
    version: int


def normalize_resource(resource: str) -> str:
    return resource.strip().rstrip("/").lower()


def is_known_resource(resource: str) -> bool:
    """Whether ``resource`` is a first-party resource (by URI, appId or instance host); anything
    longer than 256 characters is not (and is never remembered: the memo holds 4,096 short strings)."""
    return len(resource) <= 256 and _is_known_resource(resource)


@lru_cache(maxsize=4096)
def _is_known_resource(resource: str) -> bool:
    normalized = normalize_resource(resource)
    return (
        normalized in FIRST_PARTY
        or normalized in FIRST_PARTY_APP_IDS
        or normalized in (EXCHANGE_URI, EXCHANGE_APP_ID)
        or _INSTANCE_RESOURCE.fullmatch(normalized) is not None
    )


def first_party_audience(resource: str) -> Audience | None:
    """The audience of a first-party resource, or None.

    v1.0 tokens carry the resource as the request spelled it (identity-endpoints.md §1: with
    ``resource=https://vault.azure.net`` the ``aud`` was ``https://vault.azure.net``); the token
    exchange audience gets a v2.0 token with its appId.
    """
    if not is_known_resource(resource):
        return None
    if normalize_resource(resource) in (EXCHANGE_URI, EXCHANGE_APP_ID):
        return Audience(EXCHANGE_APP_ID, 2)
    return Audience(resource, 1)


def same_resource(a: str, b: str) -> bool:
    """Whether a federated credential's audience ``a`` accepts an assertion's ``aud`` ``b``: the same
    string, or the token exchange audience's URI and appId, which Entra treats as one (a credential
    names the URI, a managed identity's v2.0 token carries the appId)."""
    exchange = (EXCHANGE_URI, EXCHANGE_APP_ID)
    return a == b or (normalize_resource(a) in exchange and normalize_resource(b) in exchange)


def resource_from_scope(scope: str) -> str:
    """The resource of a client-credentials ``scope``: ``https://x/.default`` -> ``https://x``.

    MSAL's own scopes (``openid profile offline_access``, which MSAL for Java always adds) are
    ignored, as Entra ignores them for client credentials. OAuthError: AADSTS1002012 when the one
    scope is not a ``/.default`` scope; AADSTS70011 when several resources (or a ``/.default``
    and another scope) are asked for at once. Sources: entra-docs
    ``v2-oauth2-client-creds-grant-flow.md``; the 70011 text as Entra sent it in
    Azure/azure-sdk-for-net#9076 and AzureAD/microsoft-authentication-library-for-js#6069.
    """
    if len(scope) > _MAX_SCOPE:
        raise errors.invalid_scope(scope[:200])
    wanted = [s for s in scope.split() if s.lower() not in _OIDC_SCOPES]
    if not wanted:
        raise errors.invalid_scope_format(scope)
    resources = {
        normalize_resource(s[: -len(_DEFAULT_SUFFIX)]) for s in wanted if s.endswith(_DEFAULT_SUFFIX)
    }
    if len(wanted) == 1 and len(resources) == 0:
        raise errors.invalid_scope_format(scope)
    if len(resources) != 1 or any(not s.endswith(_DEFAULT_SUFFIX) for s in wanted):
        raise errors.invalid_scope(scope)
    return wanted[0][: -len(_DEFAULT_SUFFIX)]


def app_id_of(resource: str) -> str | None:
    """The appId a resource names when it is an app's appId or ``api://{appId}``, else None."""
    normalized = normalize_resource(resource)
    candidate = normalized.removeprefix("api://")
    return candidate if is_guid(candidate) else None

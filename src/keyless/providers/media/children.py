"""What every Media Services child resource shares (assets, content key policies, streaming
policies and locators; later transforms and jobs): ProxyResources under an account, their
api-versions, the name rule and the 404 the service answers (shared/reference/media-az.md §3).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from keyless.arm import errors
from keyless.arm.ids import ResourceId
from keyless.arm.resource_types import NameRule, ResourceType

if TYPE_CHECKING:
    from keyless.arm.engine import Reply
    from keyless.arm.http import ProviderRequest
    from keyless.providers.media.http import AccountContext, MediaFront

NAMESPACE = "Microsoft.Media"
# What the SDKs send for the metadata groups: az 2.91 (azure-mgmt-media 9.0.0) 2021-11-01,
# azure-mgmt-media 10.x 2022-08-01; the spec also has 2023-01-01 (media.md §0, media-az.md §0).
CHILD_API_VERSIONS = frozenset(
    ["2018-07-01", "2020-05-01", "2021-06-01", "2021-11-01", "2022-08-01", "2023-01-01"]
)
# "cannot include: '<', '>', '%', '&', ':', '\\', '?', '/', '*', '+', '.', the single quote
# character, or any control characters ... max length 260" (media-services-apis-overview.md).
CHILD_NAME = re.compile(r"[^<>%&:\\?/*+.'\x00-\x1f\x7f-\x9f]{1,260}")
CHILD_NAME_TEXT = (
    "It must be 1 to 260 characters and cannot include '<', '>', '%', '&', ':', '\\', '?', '/', "
    "'*', '+', '.', the single quote character, or control characters."
)


def child_id(rid: ResourceId) -> str:
    """A child's id as the service spells it: the account segment ``mediaservices`` whatever the
    request said (the SDKs send ``mediaServices``; the spec examples' ids are lower-case)."""
    return str(
        ResourceId(
            rid.subscription_id,
            rid.resource_group,
            rid.namespace,
            ("mediaservices", *rid.types[1:]),
            rid.names,
        )
    )


def asset_id(account: ResourceId, name: str) -> ResourceId:
    """The id of asset ``name`` of the account ``account`` (as the request spelled the account)."""
    return ResourceId(
        account.subscription_id,
        account.resource_group,
        account.namespace,
        (*account.types, "assets"),
        (*account.names, name),
    )


def not_found() -> errors.ArmError:
    """Media Services' own 404 for a missing child (recordings test_ams_asset, test_ams_streaming_locator)."""
    return errors.ArmError(404, "NotFound", "The requested resource was not found.")


def bad_request(message: str, target: str | None = None) -> errors.ArmError:
    """400 ``BadRequest``: the code of every known Media Services validation error (media-az.md §3;
    the texts of most are Keyless's, Azure's are not published)."""
    return errors.ArmError(400, "BadRequest", message, target=target)


class MediaChildType(ResourceType):
    """Base of the account's child types (``type_path`` ``mediaservices/{kind}``)."""

    def __init__(
        self, kind: str, *, api_versions: frozenset[str] = CHILD_API_VERSIONS, create_status: int = 201
    ) -> None:
        super().__init__(
            namespace=NAMESPACE,
            type_path=f"mediaservices/{kind}",
            api_versions=api_versions,
            tracked=False,
            create_status=create_status,
            next_link_field="@odata.nextLink",
            name_rule=NameRule(CHILD_NAME, CHILD_NAME_TEXT),
        )

    def not_found(self, rid: ResourceId) -> errors.ArmError:
        return not_found()

    def render_id(self, rid: ResourceId) -> str:
        return child_id(rid)

    async def prepare(
        self, front: MediaFront, req: ProviderRequest, rid: ResourceId, account: AccountContext
    ) -> None:
        """Work before the engine's write that needs Key Vault or Storage (the account key, a
        container), left in ``req.ctx.prepared``; ``rid`` is the child the request targets."""

    def all_items(self, front: MediaFront, account: AccountContext) -> list[dict[str, Any]] | None:
        """Every member of this type's collection under ``account``, rendered, when they are not
        all stored rows (streaming policies); None: the stored rows are the collection."""
        return None

    def list_children(self, front: MediaFront, req: ProviderRequest, account: AccountContext) -> Reply | None:
        """The GET of this type's collection when it is not the engine's stored list (streaming
        policies: the predefined ones are never stored); None: the engine's list."""
        return None


# ctx.prepared key of the plaintext account key, for an action that opens sealed secrets.
ACCOUNT_KEY = "media.accountKey"


def prepared_account_key(prepared: dict[str, Any]) -> bytes:
    """The account key a ``prepare`` hook opened for this request (400 when it could not)."""
    key = prepared.get(ACCOUNT_KEY)
    if not isinstance(key, bytes):
        raise bad_request("The account key could not be opened.")
    return key


def optional_list(value: Any, limit: int, message: str, target: str) -> list[Any]:
    """An optional list property: absent or null is ``[]``; anything else must be a list of at most
    ``limit`` items, else 400 ``message`` (a ``{}``, ``""`` or ``0`` is refused, never read as empty)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        raise bad_request(message, target)
    return value


def text_field(props: dict[str, Any], name: str, limit: int, path: str | None = None) -> str | None:
    """An optional string property of at most ``limit`` characters (400 otherwise)."""
    value = props.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise bad_request(f"'{path or name}' must be a string of at most {limit} characters.", path or name)
    return value

"""Who is calling the Blob service, and may they run this operation.

Authentication (storage.md §1-2): ``Authorization: Bearer`` (audience ``https://storage.azure.com``,
Storage's appId or the account's own URL; the account's tenant), ``SharedKey`` (``sharedkey.py``),
a SAS in the query (``sas.py``), or nothing (anonymous: public containers only). With
``allowSharedKeyAccess: false`` Shared Key and key-signed SAS are 403
``KeyBasedAuthenticationNotPermitted``; a user delegation SAS still works.

Authorization, per operation (``Op``):

- bearer: the RBAC action through the one authorizer. Blob operations are data actions
  (``…/containers/blobs/read|write|delete|tags/read|tags/write|filter/action``) at the container
  scope ``{account}/blobServices/default/containers/{name}``; container and service operations are
  the control-plane actions Azure checks for them (``…/containers/read|write|delete``,
  ``…/containers/getAcl/action``, ``…/setAcl/action``, ``…/generateUserDelegationKey/action``), as
  the "Authorize with Microsoft Entra ID" permission tables list them. 403
  ``AuthorizationPermissionMismatch``.
- SAS: a permission letter of the operation's (``Op.sas``), and for an account SAS the service
  ``b`` and the resource type (s/c/o); a service or user delegation SAS reaches blobs of its
  container (``sr=c``: also List Blobs and Find Blobs) and nothing at service level. A user
  delegation SAS also needs ``skoid``'s RBAC right, as the signer's rights bound it.
- Shared Key: the account key is full access.
- anonymous: reads that the container's public access level allows, when the account allows
  public access (else 409 ``PublicAccessNotPermitted``); other reads of a private container are
  404 ``ResourceNotFound`` and everything else 401 ``NoAuthenticationInformation`` (Azure's answers
  to anonymous requests, chosen from the REST docs "Manage anonymous read access").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keyless.authority.resources import STORAGE_AUDIENCES
from keyless.authority.tokens import (
    BAD_SIGNATURE,
    EXPIRED,
    NOT_YET_VALID,
    WRONG_AUDIENCE,
    WRONG_ISSUER,
    Caller,
    TokenError,
    TokenValidator,
)
from keyless.providers.storage.accounts import AccountView
from keyless.providers.storage.blob import errors, sas, sharedkey
from keyless.providers.storage.blob.request import BlobRequest
from keyless.rbac.condition_eval import (
    ACCOUNT_NAME,
    BLOB_PATH,
    BLOB_PREFIX,
    BLOB_SNAPSHOT,
    BLOB_TAG_KEYS,
    BLOB_TAGS,
    CONTAINER_NAME,
    IS_CURRENT_VERSION,
    IS_HNS_ENABLED,
    SUB_OPERATION,
    AttributeValue,
    attribute_key,
    blob_tag_values,
)
from keyless.rbac.service import RbacService

_P = "Microsoft.Storage/storageAccounts/blobServices/"


@dataclass(frozen=True)
class Op:
    """One operation's access needs: ``level`` "service" | "container" | "object"; the RBAC
    ``action`` (a data action when ``data``); SAS letters any of which grants; ``public``: the
    lowest container access level ("blob" or "container") that lets anonymous callers run it."""

    name: str
    level: str
    action: str
    data: bool
    sas: str
    public: str = ""


def _blob(name: str, action: str, letters: str, public: str = "") -> Op:
    return Op(name, "object", _P + "containers/blobs/" + action, True, letters, public)


def _container(name: str, action: str, letters: str, *, data: bool = False, public: str = "") -> Op:
    prefix = "containers/blobs/" if data else "containers/"
    return Op(name, "container", _P + prefix + action, data, letters, public)


OPS: dict[str, Op] = {
    "list_containers": Op("list_containers", "service", _P + "containers/read", False, "l"),
    "service_properties": Op("service_properties", "service", _P + "read", False, "r"),
    "account_info": Op("account_info", "service", "", False, "racwdxyltfmeopi"),
    "user_delegation_key": Op(
        "user_delegation_key", "service", _P + "generateUserDelegationKey/action", False, ""
    ),
    "find_account": Op("find_account", "service", _P + "containers/blobs/filter/action", True, "f"),
    "create_container": _container("create_container", "write", "c"),
    "delete_container": _container("delete_container", "delete", "d"),
    "container_properties": _container("container_properties", "read", "r", public="container"),
    "set_container_metadata": _container("set_container_metadata", "write", "w"),
    "get_acl": _container("get_acl", "getAcl/action", ""),
    "set_acl": _container("set_acl", "setAcl/action", ""),
    "lease_container": _container("lease_container", "write", "wd"),
    "list_blobs": _container("list_blobs", "read", "l", data=True, public="container"),
    "find_container": _container("find_container", "filter/action", "f", data=True),
    "read_blob": _blob("read_blob", "read", "r", public="blob"),
    "write_blob": _blob("write_blob", "write", "w"),
    "create_blob": _blob("create_blob", "write", "wc"),
    # Creating a blob that does not exist yet: blobs/add/action is enough (storage.md §4).
    "add_blob": _blob("add_blob", "add/action", ""),
    "delete_blob": _blob("delete_blob", "delete", "d"),
    "read_tags": _blob("read_tags", "tags/read", "t"),
    "write_tags": _blob("write_tags", "tags/write", "t"),
}
_SAS_LEVEL = {"service": "s", "container": "c", "object": "o"}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: ``kind`` "bearer" | "sharedkey" | "sas" | "anonymous"."""

    kind: str
    caller: Caller | None = None
    grant: sas.SasGrant | None = None


def _token_detail(exc: TokenError) -> str:
    return {
        WRONG_AUDIENCE: "Audience validation failed. Audience did not match.",
        EXPIRED: "Lifetime validation failed. The token is expired.",
        NOT_YET_VALID: "Lifetime validation failed. The token is not yet valid.",
        BAD_SIGNATURE: "Signature validation failed. Signature is invalid.",
        WRONG_ISSUER: "Issuer validation failed. Issuer did not match.",
    }.get(exc.reason, f"Token validation failed. {exc.detail}")


def delegated_caller(object_id: str, tenant_id: str) -> Caller:
    """The signer of a user delegation SAS, as RBAC sees it (only the object id is used)."""
    return Caller(object_id, "", tenant_id, "ServicePrincipal", "", {})


@dataclass
class BlobAttributes:
    """The ABAC attributes of one blob request (storage-auth-abac-attributes.md): account,
    container and blob path, the blob's stored index tags (read only if a condition asks, through
    ``tags``), and the request's own (``prefix`` of a listing, ``snapshot``, the tags a write sets,
    the sub-operation). Encryption scopes are not modelled: a condition on one cannot be decided
    (None), so it never grants."""

    account: str
    container: str | None
    blob: str | None
    request_values: Mapping[str, AttributeValue] = field(default_factory=dict)
    tags: Callable[[], dict[str, str] | None] = lambda: None
    _resource: dict[str, AttributeValue] | None = None
    _request: dict[str, AttributeValue] | None = None

    def _resources(self) -> dict[str, AttributeValue]:
        if self._resource is None:
            values: dict[str, AttributeValue] = {ACCOUNT_NAME: self.account, IS_HNS_ENABLED: False}
            if self.container is not None:
                values[CONTAINER_NAME] = self.container
            if self.blob is not None:
                values[BLOB_PATH] = self.blob
                values[IS_CURRENT_VERSION] = True
            self._resource = {attribute_key(k): v for k, v in values.items()}
        return self._resource

    def resource(self, name: str) -> AttributeValue | None:
        key = attribute_key(name)
        if key.startswith(attribute_key(BLOB_TAGS)) and self.blob is not None:
            stored = self.tags()
            if stored is None:
                return None
            tagged = {attribute_key(k): v for k, v in blob_tag_values(stored).items()}
            return tagged.get(key) if key != attribute_key(BLOB_TAG_KEYS) or stored else None
        return self._resources().get(key)

    def request(self, name: str) -> AttributeValue | None:
        if self._request is None:
            self._request = {attribute_key(k): v for k, v in self.request_values.items()}
        return self._request.get(attribute_key(name))

    def principal(self, name: str) -> AttributeValue | None:
        return None

    def environment(self, name: str) -> AttributeValue | None:
        return None


def request_attributes(
    prefix: str | None, snapshot: str | None, tags: dict[str, str] | None, sub: str | None
) -> dict[str, AttributeValue]:
    """The ``@Request`` attributes: a listing's ``prefix``, a ``snapshot`` read, the tags a write
    sets (``x-ms-tags``) and the sub-operation."""
    values: dict[str, AttributeValue] = {}
    if prefix is not None:
        values[BLOB_PREFIX] = prefix
    if snapshot:
        values[BLOB_SNAPSHOT] = snapshot
    if tags is not None:
        values.update(blob_tag_values(tags))
    if sub:
        values[SUB_OPERATION] = sub
    return values


class BlobAccess:
    """Authentication and authorization for one Blob request (module docstring)."""

    def __init__(self, validator: TokenValidator, rbac: RbacService, delegation_secret: bytes) -> None:
        self.validator = validator
        self.rbac = rbac
        self.delegation_secret = delegation_secret

    def authenticate(self, req: BlobRequest, account: AccountView, keys: Any, policies: Any) -> Principal:
        """The caller of ``req``; ``keys()`` gives the account keys (read only when needed),
        ``policies(container, si)`` a container's stored access policy. Raises 401/403."""
        authorization = req.headers.get("authorization")
        if sas.sas_kind(req.query) is not None:
            return self._sas_principal(req, account, keys, policies, authorization)
        if authorization is not None:
            scheme, _, rest = authorization.strip().partition(" ")
            if scheme.lower() == "bearer":
                return Principal("bearer", caller=self._bearer(rest.strip(), account))
            if scheme == "SharedKey":
                if not account.allows_shared_key():
                    raise errors.key_auth_not_permitted()
                sharedkey.verify_shared_key(
                    authorization,
                    req.method,
                    req.raw_path,
                    sharedkey.parse_query(req.query_string),
                    req.headers,
                    account.name,
                    keys(),
                    now=req.now,
                )
                return Principal("sharedkey")
            raise errors.StorageError(
                400,
                "InvalidAuthenticationInfo",
                "Authentication information is not given in the correct format. Check the value of "
                "Authorization header.",
            )
        return Principal("anonymous")

    def _sas_principal(
        self, req: BlobRequest, account: AccountView, keys: Any, policies: Any, authorization: str | None
    ) -> Principal:
        """A request carrying a SAS. A user delegation SAS naming a delegated user (``sduoid``) is
        good only with that user's own bearer token on the same request (REST docs, "Create a user
        delegation SAS": "signedDelegatedUserObjectId ... the SAS ... with an OAuth token for that
        user"); anyone else holding the URL gets 403 ``AuthenticationFailed``."""
        grant = self.verify_sas(
            req.query, account, req.container, req.blob, keys, policies, req.now, req.headers
        )
        sas.check_source_ip(grant, req.origin.address)
        if grant.delegated_user_oid:
            scheme, _, rest = (authorization or "").strip().partition(" ")
            if scheme.lower() != "bearer":
                raise errors.authentication_failed(
                    "This SAS is for a delegated user: the request must carry that user's bearer token."
                )
            caller = self._bearer(rest.strip(), account)
            if caller.object_id.lower() != grant.delegated_user_oid.lower():
                raise errors.authentication_failed(
                    "The bearer token does not belong to the SAS's delegated user (sduoid)."
                )
        return Principal("sas", grant=grant)

    def verify_sas(
        self,
        query: Mapping[str, str],
        account: AccountView,
        container: str | None,
        blob: str | None,
        keys: Any,
        policies: Any,
        now: float,
        headers: Mapping[str, str] | None = None,
    ) -> sas.SasGrant:
        """The grant of the SAS in ``query`` (which has one) for ``account``/``container``/``blob``;
        403 ``KeyBasedAuthenticationNotPermitted`` for a key-signed SAS when keys are off, 403
        ``AuthenticationFailed`` for a bad one (``sas.parse_and_verify_sas``)."""
        kind = sas.sas_kind(query)
        if kind != "user-delegation" and not account.allows_shared_key():
            raise errors.key_auth_not_permitted()

        def udk(key: sas.SignedKey) -> bytes | None:
            if key.tid.lower() != account.tenant_id.lower():
                return None
            return sas.derive_user_delegation_key(self.delegation_secret, account.name, key)

        grant = sas.parse_and_verify_sas(
            query,
            account.name,
            container,
            blob,
            keys() if kind != "user-delegation" else [],
            udk,
            now,
            headers=headers,
            access_policy=policies,
        )
        assert grant is not None
        return grant

    def bearer(self, token: str, account: AccountView) -> Caller:
        """The caller a bearer token names, for ``account`` (401 ``InvalidAuthenticationInfo``)."""
        return self._bearer(token, account)

    def _bearer(self, token: str, account: AccountView) -> Caller:
        audiences = STORAGE_AUDIENCES | {f"https://{account.name}.blob.core.windows.net"}
        try:
            caller = self.validator.validate(token, audiences)
        except TokenError as exc:
            raise errors.invalid_authentication_info(account.tenant_id, _token_detail(exc)) from None
        if account.tenant_id and caller.tenant_id.lower() != account.tenant_id.lower():
            raise errors.invalid_authentication_info(
                account.tenant_id, "Issuer validation failed. Issuer did not match."
            )
        return caller

    def authorize(
        self,
        principal: Principal,
        op: Op,
        account: AccountView,
        container: str | None,
        *,
        public_access: str | None = None,
        allows_public: bool = False,
        attributes: BlobAttributes | None = None,
    ) -> None:
        """Raise unless ``principal`` may run ``op`` on ``container`` (None at service level).
        ``public_access``: the container's level ("blob", "container" or None) for anonymous calls."""
        if principal.kind == "sharedkey":
            return
        if principal.kind == "bearer":
            assert principal.caller is not None
            self._rbac(principal.caller, op, account, container, attributes)
            return
        if principal.kind == "sas":
            assert principal.grant is not None
            self._sas(principal.grant, op, account, container, attributes)
            return
        self._anonymous(op, account, public_access, allows_public)

    def scope(self, account: AccountView, container: str | None) -> str:
        base = f"{account.resource_id}/blobServices/default"
        return base if container is None else f"{base}/containers/{container}"

    def _rbac(
        self,
        caller: Caller,
        op: Op,
        account: AccountView,
        container: str | None,
        attributes: BlobAttributes | None,
    ) -> None:
        if not op.action or not self.rbac.enforce:
            return
        scope = self.scope(account, container if op.level != "service" else None)
        if op.data:
            allowed = self.rbac.authorize_data_action(caller, op.action, scope, attributes).allowed
        else:
            allowed = self.rbac.decide(caller.object_id, op.action, scope).allowed
        if not allowed:
            raise errors.permission_mismatch()

    def _sas(
        self,
        grant: sas.SasGrant,
        op: Op,
        account: AccountView,
        container: str | None,
        attributes: BlobAttributes | None,
    ) -> None:
        if grant.kind == "account":
            if "b" not in grant.services:
                raise errors.service_mismatch()
            if _SAS_LEVEL[op.level] not in grant.resource_types:
                raise errors.resource_type_mismatch()
        else:
            allowed_level = op.level == "object" or (
                op.level == "container" and grant.resource == "c" and op.data
            )
            if not allowed_level:
                raise errors.resource_type_mismatch()
        if not any(sas.allows(grant, letter) for letter in op.sas):
            raise errors.permission_mismatch()
        if grant.kind == "user-delegation" and grant.signed_oid and op.action and self.rbac.enforce:
            signer = delegated_caller(grant.signed_oid, account.tenant_id)
            self._rbac(signer, op, account, container, attributes)

    def _anonymous(
        self, op: Op, account: AccountView, public_access: str | None, allows_public: bool
    ) -> None:
        if not op.public:
            raise errors.no_authentication_information(account.tenant_id)
        if not allows_public:
            raise errors.public_access_not_permitted()
        level = public_access or ""
        if level == "container" or (level == "blob" and op.public == "blob"):
            return
        raise errors.resource_not_found()

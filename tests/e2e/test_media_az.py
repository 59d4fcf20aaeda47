"""The real az CLI's `az ams` against Keyless (issue 11, item 6): the Media Services CLI tutorials
run as written, as the admin under `keyless run`, every step through az itself.

- security-encrypt-data-managed-identity-cli-tutorial: a customer-managed key reached with the
  account's system-assigned (and a user-assigned) identity; rotation, disabling, recovery.
- security-access-storage-managed-identity-cli-tutorial: a storage account behind a firewall
  (``--default-action Deny --bypass AzureServices``) reached as a trusted service with the
  account's identity; assets, their containers' SAS URLs, identities.
- The errors az shows (exit code, ``(Code) Message``).

az 2.91 pins azure-mgmt-media 9.0.0: accounts at api-version 2021-06-01 (a PATCH must answer 200),
children at 2021-11-01 (shared/reference/media-az.md). The server is ``media_server`` (customer
keys checked every second), so rotation and revocation show within seconds.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.media_helpers import wait_for
from tests.e2e.test_az_cli import Az, az_bin  # noqa: F401 (the az_bin fixture)
from tests.keyless_server import KeylessServer

pytestmark = pytest.mark.slow

FORBIDDEN = "(BadRequest) Access to the Customer Key was forbidden."
NAME_RULE = (
    "The Media Services account name should be between 3 and 24 characters and may contain only "
    "lowercase letters and numbers."
)


@pytest.fixture(scope="module")
def az(
    media_server: KeylessServer,
    az_bin: Path,  # noqa: F811 (the fixture)
    tmp_path_factory: pytest.TempPathFactory,
) -> Az:
    """az signed in as the admin (a service principal), as test_az_cli.py does."""
    runner = Az(media_server, az_bin, tmp_path_factory.mktemp("home-media"))
    runner.run("login", "--service-principal", "-u", "$AZURE_CLIENT_ID", "--password=$AZURE_CLIENT_SECRET",
               "--tenant", "$AZURE_TENANT_ID")  # fmt: skip
    return runner


def _suffix() -> str:
    return uuid.uuid4().hex[:10]


def _text(az: Az, *args: str) -> str:
    """One value (``-o tsv``)."""
    return az.run(*args, "-o", "tsv").stdout.strip()


def _fails(az: Az, *args: str) -> str:
    """Run a command that must fail with exit code 1 (an error from the service); its stderr."""
    done = az.run(*args, ok=False)
    assert done.returncode == 1, f"az {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stderr


def _group_and_storage(az: Az, *storage_flags: str) -> tuple[str, str, str]:
    """A resource group and a Standard_LRS storage account made with az; (group, name, id)."""
    suffix = _suffix()
    group, storage = f"rgams{suffix}", f"stams{suffix}"
    az.run("group", "create", "-n", group, "-l", "westeurope", "-o", "none")
    made = az.json("storage", "account", "create", "-n", storage, "-g", group, "-l", "westeurope",
                   "--sku", "Standard_LRS", *storage_flags)  # fmt: skip
    return group, storage, str(made["id"])


def _vault_with_key(az: Az, group: str) -> tuple[str, str]:
    """An access-policy vault with purge protection and an RSA key; (vault, versionless kid)."""
    vault = f"kvams{_suffix()}"
    az.run("keyvault", "create", "-n", vault, "-g", group, "-l", "westeurope", "--enable-purge-protection",
           "--enable-rbac-authorization", "false", "-o", "none")  # fmt: skip
    kid = _text(az, "keyvault", "key", "create", "--vault-name", vault, "-n", "cmk", "--query", "key.kid")
    versionless = kid.rsplit("/", 1)[0]
    assert versionless == f"https://{vault}.vault.azure.net/keys/cmk"
    return vault, versionless


def test_customer_managed_key_tutorial_with_the_system_assigned_identity(az: Az) -> None:
    group, storage, _ = _group_and_storage(az)
    vault, key_id = _vault_with_key(az, group)
    account = f"ams{_suffix()}"
    created = az.json("ams", "account", "create", "-n", account, "-g", group, "-l", "westeurope",
                      "--storage-account", storage, "--mi-system-assigned")  # fmt: skip
    assert created["identity"]["type"] == "SystemAssigned"
    assert created["encryption"]["type"] == "SystemKey"
    principal = created["identity"]["principalId"]
    encryption = ("ams", "account", "encryption")
    use_key = (*encryption, "set", "-a", account, "-g", group, "--key-type", "CustomerKey")

    # Before the vault grants the identity anything, the key is out of reach: nothing changes.
    stderr = _fails(az, *use_key, "--key-identifier", key_id)
    assert FORBIDDEN in stderr
    assert az.json(*encryption, "show", "-a", account, "-g", group)["type"] == "SystemKey"

    # An EC key is refused whatever the grants (Media Services takes RSA keys only).
    az.run("keyvault", "set-policy", "-n", vault, "--object-id", principal,
           "--key-permissions", "get", "unwrapKey", "wrapKey", "-o", "none")  # fmt: skip
    az.run("keyvault", "key", "create", "--vault-name", vault, "-n", "eckey", "--kty", "EC",
           "--curve", "P-256", "-o", "none")  # fmt: skip
    stderr = _fails(az, *use_key, "--key-identifier", f"https://{vault}.vault.azure.net/keys/eckey")
    assert "(BadRequest) " in stderr and "RSA" in stderr
    assert az.json(*encryption, "show", "-a", account, "-g", group)["type"] == "SystemKey"

    # The tutorial: set the versionless key, then show it.
    updated = az.json(*use_key, "--key-identifier", key_id)
    assert updated["encryption"]["type"] == "CustomerKey"
    shown = az.json(*encryption, "show", "-a", account, "-g", group)
    assert shown["type"] == "CustomerKey"
    assert shown["keyVaultProperties"]["keyIdentifier"] == key_id
    first = shown["keyVaultProperties"]["currentKeyIdentifier"]
    assert first.startswith(key_id + "/") and len(first) > len(key_id) + 1
    assert shown["identity"]["useSystemAssignedIdentity"] is True

    # Rotation: the account follows the key's newest version by itself.
    newest = _text(az, "keyvault", "key", "rotate", "--vault-name", vault, "-n", "cmk", "--query", "key.kid")
    assert newest != first

    def current() -> str:
        return _text(az, *encryption, "show", "-a", account, "-g", group,
                     "--query", "keyVaultProperties.currentKeyIdentifier")  # fmt: skip

    wait_for(lambda: current() == newest)

    # A disabled key leaves only account GET, LIST and DELETE working.
    az.run("keyvault", "key", "set-attributes", "--vault-name", vault, "-n", "cmk", "--enabled", "false",
           "-o", "none")  # fmt: skip
    assets = ("ams", "asset", "list", "-a", account, "-g", group)

    def refused() -> str:
        done = az.run(*assets, ok=False)
        return done.stderr if done.returncode == 1 else ""

    assert FORBIDDEN.removesuffix(".") in wait_for(refused)
    assert az.json("ams", "account", "show", "-n", account, "-g", group)["name"] == account
    assert account in {a["name"] for a in az.json("ams", "account", "list", "-g", group)}

    # Enabled again: the account recovers.
    az.run("keyvault", "key", "set-attributes", "--vault-name", vault, "-n", "cmk", "--enabled", "true",
           "-o", "none")  # fmt: skip
    wait_for(lambda: az.run(*assets, ok=False).returncode == 0)
    assert az.json(*assets) == []

    # Back to the system key.
    back = az.json(*encryption, "set", "-a", account, "-g", group, "--key-type", "SystemKey")
    assert back["encryption"]["type"] == "SystemKey"
    assert az.json(*encryption, "show", "-a", account, "-g", group)["keyVaultProperties"] is None


def test_customer_managed_key_tutorial_with_a_user_assigned_identity(az: Az) -> None:
    group, storage, _ = _group_and_storage(az)
    vault, key_id = _vault_with_key(az, group)
    identity = az.json("identity", "create", "-g", group, "-n", "amskey")
    account = f"ams{_suffix()}"
    created = az.json("ams", "account", "create", "-n", account, "-g", group, "-l", "westeurope",
                      "--storage-account", storage, "--mi-user-assigned", identity["id"])  # fmt: skip
    assert created["identity"]["type"] == "UserAssigned"
    attached = created["identity"]["userAssignedIdentities"][identity["id"]]
    assert attached["principalId"] == identity["principalId"]
    assert attached["clientId"] == identity["clientId"]
    use_key = ("ams", "account", "encryption", "set", "-a", account, "-g", group, "--key-type", "CustomerKey",
               "--key-identifier", key_id, "--user-assigned", identity["id"])  # fmt: skip

    assert FORBIDDEN in _fails(az, *use_key)
    az.run("keyvault", "set-policy", "-n", vault, "--object-id", identity["principalId"],
           "--key-permissions", "get", "unwrapKey", "wrapKey", "-o", "none")  # fmt: skip
    az.json(*use_key)
    shown = az.json("ams", "account", "encryption", "show", "-a", account, "-g", group)
    assert shown["type"] == "CustomerKey"
    assert shown["identity"] == {"useSystemAssignedIdentity": False, "userAssignedIdentity": identity["id"]}
    assert shown["keyVaultProperties"]["keyIdentifier"] == key_id
    assert shown["keyVaultProperties"]["currentKeyIdentifier"].startswith(key_id + "/")
    assert az.json("ams", "asset", "list", "-a", account, "-g", group) == []

    # Taking the grant away makes the key unreachable for this identity too.
    az.run("keyvault", "delete-policy", "-n", vault, "--object-id", identity["principalId"], "-o", "none")

    def refused() -> str:
        done = az.run("ams", "asset", "list", "-a", account, "-g", group, ok=False)
        return done.stderr if done.returncode == 1 else ""

    assert FORBIDDEN.removesuffix(".") in wait_for(refused)


def _blob_status(srv: KeylessServer, url: str, method: str = "GET", **kwargs: Any) -> int:
    with srv.client() as http:
        return http.request(method, url, **kwargs).status_code


def _blob_url(container_sas_url: str, blob: str) -> str:
    """A blob in the container a container SAS URL names, with the same SAS."""
    base, _, query = container_sas_url.partition("?")
    return f"{base}/{blob}?{query}"


def test_trusted_storage_tutorial(az: Az, media_server: KeylessServer) -> None:
    firewall = ("--default-action", "Deny", "--bypass", "AzureServices")
    group, storage, storage_id = _group_and_storage(az, *firewall)
    account = f"ams{_suffix()}"
    create = ("ams", "account", "create", "-n", account, "-g", group, "-l", "westeurope",
              "--storage-account", storage, "--mi-system-assigned")  # fmt: skip

    # With the firewall closed, the new account (Shared Key, from outside) cannot reach storage.
    stderr = _fails(az, *create)
    assert "(BadRequest) Storage account cannot be accessed." in stderr
    assert az.run("ams", "account", "show", "-n", account, "-g", group, ok=False).returncode == 3

    # The tutorial's order: the storage account open while the Media Services account is created.
    open_firewall = ("storage", "account", "update", "-n", storage, "-g", group, "--default-action", "Allow")
    az.run(*open_firewall, "-o", "none")
    created = az.json(*create)
    az.run("storage", "account", "update", "-n", storage, "-g", group, *firewall, "-o", "none")
    shown = az.json("ams", "account", "show", "-n", account, "-g", group)
    principal = shown["identity"]["principalId"]
    assert principal == created["identity"]["principalId"]
    assert shown["storageAuthentication"] == "System"
    assert [s["id"] for s in shown["storageAccounts"]] == [storage_id]

    # Switching to the managed identity before it holds a data role is refused, nothing changed.
    set_auth = ("ams", "account", "storage", "set-authentication", "-a", account, "-g", group,
                "--storage-auth", "ManagedIdentity", "--storage-account-id", storage_id, "--system-assigned")  # fmt: skip
    stderr = _fails(az, *set_auth)
    assert "(BadRequest) Storage account cannot be accessed." in stderr
    assert "AuthorizationPermissionMismatch" in stderr
    assert az.json("ams", "account", "show", "-n", account, "-g", group)["storageAuthentication"] == "System"

    for role in ("Storage Blob Data Contributor", "Reader"):
        az.run("role", "assignment", "create", "--assignee", principal, "--role", role, "--scope", storage_id,
               "-o", "none")  # fmt: skip
    switched = az.json(*set_auth)
    assert switched["storageAuthentication"] == "ManagedIdentity"
    entry = switched["storageAccounts"][0]
    assert entry["id"] == storage_id and entry["type"] == "Primary"
    assert entry["identity"]["useSystemAssignedIdentity"] is True
    assert az.json("ams", "account", "show", "-n", account, "-g", group)["storageAuthentication"] == (
        "ManagedIdentity"
    )

    # Assets: containers made through the firewall by the trusted service.
    asset = ("ams", "asset")
    where = ("-a", account, "-g", group)
    first = az.json(*asset, "create", *where, "-n", "input")
    assert first["storageAccountName"] == storage
    assert first["container"] == f"asset-{first['assetId']}"
    named = az.json(*asset, "create", *where, "-n", "clips", "--container", "my-clips", "--description", "d",
                    "--alternate-id", "alt", "--storage-account", storage)  # fmt: skip
    assert (named["container"], named["description"], named["alternateId"]) == ("my-clips", "d", "alt")
    assert sorted(a["name"] for a in az.json(*asset, "list", *where)) == ["clips", "input"]
    assert az.json(*asset, "show", *where, "-n", "input")["assetId"] == first["assetId"]

    # SAS URLs for an asset's container: the storage firewall still applies to whoever uses them.
    urls = az.json(*asset, "get-sas-urls", *where, "-n", "clips")
    assert len(urls) == 2
    assert all(
        u.startswith(f"https://{storage}.blob.core.windows.net/my-clips?") and "sp=rl" in u for u in urls
    )
    writable = az.json(*asset, "get-sas-urls", *where, "-n", "clips", "--permissions", "ReadWrite")
    assert all("sp=rwl" in u for u in writable)
    listing = "&restype=container&comp=list"  # appended: httpx's params would replace the SAS query
    assert _blob_status(media_server, urls[0] + listing) == 403
    az.run(*open_firewall, "-o", "none")
    try:
        upload = {"content": b"video", "headers": {"x-ms-blob-type": "BlockBlob"}}
        assert _blob_status(media_server, _blob_url(writable[0], "clip.mp4"), "PUT", **upload) == 201
        assert _blob_status(media_server, urls[1] + listing) == 200
        assert _blob_status(media_server, _blob_url(urls[0], "clip.mp4")) == 200
        assert _blob_status(media_server, _blob_url(urls[0], "other.mp4"), "PUT", **upload) == 403
    finally:
        az.run("storage", "account", "update", "-n", storage, "-g", group, *firewall, "-o", "none")

    az.run(*asset, "delete", *where, "-n", "clips")
    missing = az.run(*asset, "show", *where, "-n", "clips", ok=False)
    assert missing.returncode == 3 and "(NotFound) The requested resource was not found." in missing.stderr
    assert [a["name"] for a in az.json(*asset, "list", *where)] == ["input"]

    # Names: taken, free, invalid (az prints the message, or "Name available.").
    check = ("ams", "account", "check-name", "-l", "westeurope", "-n")
    assert az.json(*check, account).startswith("Already in use by another Media Service account.")
    assert az.json(*check, f"free{_suffix()}") == "Name available."
    assert az.json(*check, "Not_Valid") == NAME_RULE

    # Identities: a user-assigned one added beside the system-assigned one; assigning the
    # system-assigned one again changes nothing.
    identity = az.json("identity", "create", "-g", group, "-n", "amsextra")
    both = az.json("ams", "account", "identity", "assign", "-n", account, "-g", group,
                   "--user-assigned", identity["id"])  # fmt: skip
    assert both["identity"]["type"] == "SystemAssigned,UserAssigned"
    assert both["identity"]["principalId"] == principal
    assert list(both["identity"]["userAssignedIdentities"]) == [identity["id"]]
    again = az.json("ams", "account", "identity", "assign", "-n", account, "-g", group, "--system-assigned")
    assert again["identity"]["type"] == "SystemAssigned,UserAssigned"
    assert again["identity"]["principalId"] == principal
    assert list(again["identity"]["userAssignedIdentities"]) == [identity["id"]]
    assert az.json("ams", "account", "identity", "show", "-n", account, "-g", group) == again["identity"]
    # Storage is still reached with the system-assigned identity.
    assert az.json(*asset, "create", *where, "-n", "late")["storageAccountName"] == storage


def test_system_assigned_identity_added_to_a_user_assigned_account(az: Az) -> None:
    group, storage, _ = _group_and_storage(az)
    identity = az.json("identity", "create", "-g", group, "-n", "amsfirst")
    account = f"ams{_suffix()}"
    az.run("ams", "account", "create", "-n", account, "-g", group, "-l", "westeurope",
           "--storage-account", storage, "--mi-user-assigned", identity["id"], "-o", "none")  # fmt: skip
    added = az.json("ams", "account", "identity", "assign", "-n", account, "-g", group, "--system-assigned")
    assert set(added["identity"]["type"].split(",")) == {"SystemAssigned", "UserAssigned"}
    assert added["identity"]["principalId"]
    assert list(added["identity"]["userAssignedIdentities"]) == [identity["id"]]


def test_an_invalid_account_name_is_a_bad_request(az: Az) -> None:
    group, storage, _ = _group_and_storage(az)
    for name in ("Not_Valid", "ab", "a" * 25):
        stderr = _fails(az, "ams", "account", "create", "-n", name, "-g", group, "-l", "westeurope",
                        "--storage-account", storage)  # fmt: skip
        assert "ERROR: (BadRequest) " in stderr and NAME_RULE in stderr

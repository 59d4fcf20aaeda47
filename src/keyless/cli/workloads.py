"""The environment a process gets when it runs *as* a workload (`keyless run --as`): a VM, a
Function app, or a user-assigned identity through a federated credential; and a workload's network
settings (``--public-ip`` / ``--subnet`` on ``vm update`` and ``functionapp update``, and the
helpers ``vm create`` / ``functionapp create`` use for the same flags)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from keyless.cli.client import ArmClient
from keyless.cli.output import Output, Query, resource_group_of
from keyless.cli.resources import (
    FUNCTION_APP,
    MSI_API,
    OIDC_ISSUER_API,
    OIDC_ISSUER_TYPE,
    SITE_TYPE,
    UAMI_TYPE,
    VM,
    VM_API,
    VM_TYPE,
    WEB_API,
    _emit_resource,
    _Kind,
    functionapp_app,
    vm_app,
)
from keyless.cli.runtime import DataDir, RuntimeInfo, azure_cli_environment, client_environment, settings_for
from keyless.config import Settings

# Variables a real VM or Function app does not have: `run --as` removes them.
_FOREIGN = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)
# Assertions live an hour; the file is rewritten well before that (azure-identity rereads it).
_ASSERTION_REFRESH_SECONDS = 600

err_console = Console(stderr=True, soft_wrap=True)


# --- running as a workload --------------------------------------------------------------------


@dataclass
class WorkloadEnvironment:
    """The variables a process running as a workload gets, and what keeps them fresh."""

    variables: dict[str, str]
    removed: tuple[str, ...] = _FOREIGN
    assertion_file: Path | None = None
    refresh: Any = None  # () -> str: a fresh assertion, for federated workloads
    _stop: threading.Event = field(default_factory=threading.Event)

    def keep_fresh(self) -> None:
        """Rewrite the assertion file in the background until ``stop`` (federated workloads)."""
        if self.refresh is None or self.assertion_file is None:
            return

        def loop() -> None:
            while not self._stop.wait(_ASSERTION_REFRESH_SECONDS):
                _write_private(self.assertion_file, self.refresh())  # type: ignore[arg-type]

        threading.Thread(target=loop, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self.assertion_file is not None:
            self.assertion_file.unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    from keyless.sealing import write_private_file

    write_private_file(path, text.encode())


def _find(client: ArmClient, name: str, types: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """A resource by id, or by name among the subscription's resources of ``types``."""
    if name.startswith("/"):
        for type_name, api in types:
            if f"/providers/{type_name}/".lower() in name.lower():
                response = client.request("GET", name, api)
                if response.status_code == 200:
                    found: dict[str, Any] = response.json()
                    return found
        raise _unknown(name, types)
    matches = [
        item
        for type_name, api in types
        for item in client.list_all(f"/subscriptions/{client.subscription_id}/providers/{type_name}", api)
        if item["name"].lower() == name.lower()
    ]
    if not matches:
        raise _unknown(name, types)
    if len(matches) > 1:
        ids = "\n  ".join(m["id"] for m in matches)
        err_console.print(f"[red]'{escape(name)}' is ambiguous; give the resource id:[/red]\n  {ids}")
        raise typer.Exit(1)
    chosen: dict[str, Any] = matches[0]
    return chosen


_KIND_NAMES = {
    "microsoft.compute/virtualmachines": "VM",
    "microsoft.web/sites": "Function app",
    "microsoft.managedidentity/userassignedidentities": "user-assigned identity",
}


def _unknown(name: str, types: tuple[tuple[str, str], ...]) -> typer.Exit:
    kinds = " or ".join(_KIND_NAMES.get(t.lower(), t.split("/")[-1]) for t, _ in types)
    hint = (
        "\nTo run as a user-assigned identity, add --federated (it needs a federated credential: "
        "keyless identity federate)."
        if any(t.lower() == "microsoft.compute/virtualmachines" for t, _ in types)
        else ""
    )
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        f"No {kinds} named '{name}' exists (it may have been deleted).{hint}", markup=False
    )
    return typer.Exit(1)


def workload_environment(
    settings: Settings,
    info: RuntimeInfo,
    name: str,
    *,
    federated: bool = False,
    credential: str | None = None,
    direct_imds: bool = False,
) -> WorkloadEnvironment:
    """What the platform gives a process running as ``name`` (a VM, a Function app, or — with
    ``federated`` — a user-assigned identity trusted through a federated credential)."""
    base = client_environment(settings, info, None)
    for key in ("AZURE_SUBSCRIPTION_ID", "AZURE_TENANT_ID"):
        base.pop(key, None)
    with ArmClient(settings) as client:
        if federated:
            found = _federated_environment(settings, client, base, name, credential)
            # Its own az state, keyed by the identity's client id (what the credential signs in as).
            found.variables.update(
                azure_cli_environment(settings, "identity", found.variables["AZURE_CLIENT_ID"])
            )
            return found
        workload = _find(client, name, ((VM_TYPE, VM_API), (SITE_TYPE, WEB_API)))
        is_vm = workload["type"].lower() == VM_TYPE.lower()
        api = VM_API if is_vm else WEB_API
        token = client.call("POST", f"{workload['id']}/listHostToken", api)["hostToken"]
    group = resource_group_of(workload["id"]) or "-"
    base.update(azure_cli_environment(settings, "vm" if is_vm else "functionapp", group, workload["name"]))
    # The proxy password carries the workload's network origin (and its IMDS identity).
    proxy = f"http://workload:{token}@{info.host}:{info.http_port}"
    for key in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        base[key] = proxy
    if is_vm:
        if direct_imds:
            # The path carries the (lower-case) host token for clients that go direct. Clients
            # that keep only scheme, host and port (@azure/identity 3.x: `new URL(path, base)`)
            # reach IMDS through the proxy instead, whose password names the VM: so this host
            # is taken off NO_PROXY (clients that ignore the proxy still use the path).
            base["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = f"http://{info.host}:{info.http_port}/imds/{token}"
            for key in ("NO_PROXY", "no_proxy"):
                kept = [
                    h for h in base.get(key, "").split(",") if h and h.strip().lower() != info.host.lower()
                ]
                base[key] = ",".join(kept)
    else:
        endpoint = f"http://{info.host}:{info.http_port}/msi/token"
        # What App Service sets (both the current and the legacy pair).
        base.update(
            IDENTITY_ENDPOINT=endpoint, IDENTITY_HEADER=token, MSI_ENDPOINT=endpoint, MSI_SECRET=token
        )
    return WorkloadEnvironment(base)


def _federated_environment(
    settings: Settings, client: ArmClient, base: dict[str, str], name: str, credential: str | None
) -> WorkloadEnvironment:
    identity = _find(client, name, ((UAMI_TYPE, MSI_API),))
    issuers = client.list_all(
        f"/subscriptions/{client.subscription_id}/providers/{OIDC_ISSUER_TYPE}", OIDC_ISSUER_API
    )
    issuer_ids = {i["properties"]["issuerURL"]: i["id"] for i in issuers}
    credentials = client.list_all(f"{identity['id']}/federatedIdentityCredentials", MSI_API)
    usable = [
        c
        for c in credentials
        if c["properties"].get("issuer") in issuer_ids
        and (credential is None or c["name"].lower() == credential.lower())
    ]
    if not usable:
        Console(stderr=True).print(
            f"[red]The identity '{name}' has no federated credential trusting a Keyless OIDC issuer"
            f"{f' named {credential!r}' if credential else ''}.[/red]\nCreate one with: keyless identity federate "
            f"-g <group> --identity-name {identity['name']} -n <name> --subject <subject>"
        )
        raise typer.Exit(1)
    props = usable[0]["properties"]
    mint_path = f"{issuer_ids[props['issuer']]}/issueToken"
    request = {"subject": props["subject"], "audience": props["audiences"][0]}

    def fresh_assertion() -> str:
        with ArmClient(settings) as again:
            return str(again.call("POST", mint_path, OIDC_ISSUER_API, request)["token"])

    assertion = str(client.call("POST", mint_path, OIDC_ISSUER_API, request)["token"])
    path = settings.data_dir / "run" / f"assertion-{identity['properties']['clientId']}-{id(base)}.jwt"
    _write_private(path, assertion)
    base.update(
        AZURE_FEDERATED_TOKEN_FILE=str(path),
        AZURE_CLIENT_ID=identity["properties"]["clientId"],
        AZURE_TENANT_ID=client.tenant_id,
        AZURE_AUTHORITY_HOST="https://login.microsoftonline.com",
    )
    return WorkloadEnvironment(base, assertion_file=path, refresh=fresh_assertion)


# --- network settings: --public-ip and --subnet ----------------------------------------------------

PublicIp = Annotated[
    str | None,
    typer.Option(
        "--public-ip",
        help="The public IP address Key Vault and Storage firewalls see for this workload ('' clears it).",
    ),
]
Subnet = Annotated[
    str | None,
    typer.Option(
        "--subnet",
        help="The subnet resource id (/subscriptions/…/providers/Microsoft.Network/virtualNetworks/"
        "{vnet}/subnets/{subnet}) the workload runs in, for virtual network rules ('' clears it).",
    ),
]


def network_properties(public_ip: str | None, subnet: str | None, *, site: bool) -> dict[str, Any]:
    """The ``properties`` a create or update body carries for ``--public-ip`` / ``--subnet``.

    VMs: ``keylessNetwork {publicIpAddress, subnetId}``. Sites: ``keylessNetwork.publicIpAddress``
    and App Service's own ``virtualNetworkSubnetId``. An empty value becomes null, which a PATCH
    (merge patch) removes. The server validates (400 ARM errors); nothing is checked here."""
    props: dict[str, Any] = {}
    network: dict[str, Any] = {}
    if public_ip is not None:
        network["publicIpAddress"] = public_ip or None
    if subnet is not None:
        if site:
            props["virtualNetworkSubnetId"] = subnet or None
        else:
            network["subnetId"] = subnet or None
    if network:
        props["keylessNetwork"] = network
    return props


def _update_network(
    kind: _Kind,
    data_dir: Path | None,
    group: str,
    name: str,
    public_ip: str | None,
    subnet: str | None,
    output: Output,
    query: Query,
) -> None:
    props = network_properties(public_ip, subnet, site=kind is FUNCTION_APP)
    with ArmClient(settings_for(data_dir)) as client:
        if props:
            updated = client.call("PATCH", kind.path(client, group, name), kind.api, {"properties": props})
        else:
            updated = client.call("GET", kind.path(client, group, name), kind.api)
    _emit_resource(updated, output, query)


Group = Annotated[str, typer.Option("--resource-group", "-g", help="Resource group name.")]
Name = Annotated[str, typer.Option("--name", "-n", help="Resource name.")]


@vm_app.command("update")
def vm_update(
    group: Group,
    name: Name,
    public_ip: PublicIp = None,
    subnet: Subnet = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Change a VM's network settings (its public IP and subnet); they take effect at once."""
    _update_network(VM, data_dir, group, name, public_ip, subnet, output, query)


@functionapp_app.command("update")
def functionapp_update(
    group: Group,
    name: Name,
    public_ip: PublicIp = None,
    subnet: Subnet = None,
    output: Output = None,
    query: Query = None,
    data_dir: DataDir = None,
) -> None:
    """Change a Function app's network settings (its public IP and VNet-integration subnet)."""
    _update_network(FUNCTION_APP, data_dir, group, name, public_ip, subnet, output, query)

"""The settings of a streaming endpoint a client writes, checked (spec
``Streaming/stable/2022-11-01/StreamingEndpoint.json``; media-jobs.md "Streaming endpoints"):
``accessControl`` (Akamai keys, the IP allow list), ``crossSiteAccessPolicies`` and
``customHostNames``; and the allow list as network rules for the one evaluator."""

from __future__ import annotations

import re
from ipaddress import ip_network
from typing import Any

from keyless.network import NetworkRules
from keyless.providers.media.children import bad_request, text_field

_MAX_LIST = 100
_MAX_TEXT = 4096


_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
    re.ASCII,
)


def _object(value: Any, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(f"'{path}' must be an object.", path)
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > _MAX_LIST:
        raise bad_request(f"'{path}' must be a list of at most {_MAX_LIST} items.", path)
    return value


def whole_number(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"'{path}' must be a whole number from {low} to {high}.", path)
    return value


def _strings(item: dict[str, Any], path: str, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: text_field(item, name, _MAX_TEXT, f"{path}.{name}") for name in names}


def host_names(value: Any) -> list[str]:
    """``customHostNames``: DNS names (1-253 characters of letters, digits, '-', '.')."""
    path = "properties.customHostNames"
    names = _list(value, path)
    for i, name in enumerate(names):
        if not isinstance(name, str) or _HOST_NAME.fullmatch(name) is None:
            raise bad_request(f"'{path}[{i}]' must be a host name.", f"{path}[{i}]")
    return list(names)


def allow_list(access_control: Any) -> NetworkRules | None:
    """``accessControl.ip.allow`` as network rules for the one evaluator (``keyless.network.allows``):
    deny everyone the list does not name; None when the endpoint sets no IP allow list."""
    ip = access_control.get("ip") if isinstance(access_control, dict) else None
    if not isinstance(ip, dict):
        return None
    networks = []
    for rule in ip.get("allow") or []:
        prefix = rule.get("subnetPrefixLength")
        try:
            networks.append(
                ip_network(
                    f"{rule.get('address')}" + (f"/{prefix}" if prefix is not None else ""), strict=False
                )
            )
        except ValueError:
            continue  # stored rules were checked; a bad one names no one
    return NetworkRules("Enabled", "Deny", frozenset(), tuple(networks), (), ())


def access_control(value: Any) -> dict[str, Any] | None:
    """``accessControl`` checked: ``{akamai: {akamaiSignatureHeaderAuthenticationKeyList: [...]},
    ip: {allow: [{name, address, subnetPrefixLength}]}}``; ``{}`` is null (recordings)."""
    path = "properties.accessControl"
    obj = _object(value, path)
    if not obj:
        return None
    out: dict[str, Any] = {"akamai": None, "ip": None}
    akamai = _object(obj.get("akamai"), f"{path}.akamai")
    if akamai is not None:
        keys_path = f"{path}.akamai.akamaiSignatureHeaderAuthenticationKeyList"
        keys = []
        for i, item in enumerate(_list(akamai.get("akamaiSignatureHeaderAuthenticationKeyList"), keys_path)):
            entry = _object(item, f"{keys_path}[{i}]") or {}
            keys.append(_strings(entry, f"{keys_path}[{i}]", ("identifier", "base64Key", "expiration")))
        out["akamai"] = {"akamaiSignatureHeaderAuthenticationKeyList": keys}
    ip = _object(obj.get("ip"), f"{path}.ip")
    if ip is not None:
        allow = []
        for i, item in enumerate(_list(ip.get("allow"), f"{path}.ip.allow")):
            where = f"{path}.ip.allow[{i}]"
            found = _object(item, where)
            if found is None:
                raise bad_request(f"'{where}' must be an object.", where)
            rule = _strings(found, where, ("name", "address"))
            prefix = found.get("subnetPrefixLength")
            rule["subnetPrefixLength"] = (
                None if prefix is None else whole_number(prefix, f"{where}.subnetPrefixLength", 0, 128)
            )
            try:
                ip_network(f"{rule['address']}/{rule['subnetPrefixLength'] or ''}".rstrip("/"), strict=False)
            except (ValueError, TypeError):
                raise bad_request(
                    f"'{where}.address' must be an IP address (with a fitting prefix).", where
                ) from None
            allow.append(rule)
        out["ip"] = {"allow": allow}
    return out


def cross_site(value: Any) -> dict[str, Any] | None:
    path = "properties.crossSiteAccessPolicies"
    obj = _object(value, path)
    if not obj:
        return None
    return _strings(obj, path, ("clientAccessPolicy", "crossDomainPolicy"))

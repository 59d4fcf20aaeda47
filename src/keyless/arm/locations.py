"""Azure public-cloud regions, so a misspelt location is refused as ARM refuses it."""

from __future__ import annotations

REGIONS: frozenset[str] = frozenset(
    [
        "eastus",
        "eastus2",
        "southcentralus",
        "westus2",
        "westus3",
        "australiaeast",
        "southeastasia",
        "northeurope",
        "swedencentral",
        "uksouth",
        "westeurope",
        "centralus",
        "southafricanorth",
        "centralindia",
        "eastasia",
        "japaneast",
        "koreacentral",
        "canadacentral",
        "francecentral",
        "germanywestcentral",
        "italynorth",
        "norwayeast",
        "polandcentral",
        "spaincentral",
        "switzerlandnorth",
        "mexicocentral",
        "uaenorth",
        "brazilsouth",
        "israelcentral",
        "qatarcentral",
        "centralusstage",
        "eastusstage",
        "eastus2stage",
        "northcentralusstage",
        "southcentralusstage",
        "westusstage",
        "westus2stage",
        "asia",
        "asiapacific",
        "australia",
        "brazil",
        "canada",
        "europe",
        "france",
        "germany",
        "global",
        "india",
        "israel",
        "italy",
        "japan",
        "korea",
        "newzealand",
        "norway",
        "poland",
        "qatar",
        "singapore",
        "southafrica",
        "sweden",
        "switzerland",
        "uae",
        "uk",
        "unitedstates",
        "unitedstateseuap",
        "eastasiastage",
        "southeastasiastage",
        "brazilus",
        "eastus2euap",
        "eastusstg",
        "southcentralusstg",
        "northcentralus",
        "westus",
        "japanwest",
        "jioindiawest",
        "centraluseuap",
        "westcentralus",
        "southafricawest",
        "australiacentral",
        "australiacentral2",
        "australiasoutheast",
        "koreasouth",
        "southindia",
        "westindia",
        "canadaeast",
        "francesouth",
        "germanynorth",
        "norwaywest",
        "switzerlandwest",
        "ukwest",
        "uaecentral",
        "brazilsoutheast",
        "newzealandnorth",
        "indonesiacentral",
        "malaysiawest",
        "chilecentral",
        "austriaeast",
        "belgiumcentral",
        "denmarkeast",
    ]
)


def normalize_location(location: str) -> str:
    """ARM accepts ``West Europe`` for ``westeurope``."""
    return location.replace(" ", "").lower()


# What ``GET /subscriptions/{id}/locations`` answers for each region: name, displayName, geography
# group (the regionalDisplayName's prefix), geography, physical location, and category. The shape
# is the Location model of Microsoft.Resources/subscriptions 2022-12-01 (spec example
# GetLocations.json); Logical regions (geographies, stage rings) carry no physical location.
_LOCATION_TABLE = """
eastus|East US|US|United States|Virginia|Recommended
eastus2|East US 2|US|United States|Virginia|Recommended
southcentralus|South Central US|US|United States|Texas|Recommended
westus2|West US 2|US|United States|Washington|Recommended
westus3|West US 3|US|United States|Phoenix|Recommended
australiaeast|Australia East|Asia Pacific|Australia|New South Wales|Recommended
southeastasia|Southeast Asia|Asia Pacific|Asia Pacific|Singapore|Recommended
northeurope|North Europe|Europe|Europe|Ireland|Recommended
swedencentral|Sweden Central|Europe|Sweden|Gävle|Recommended
uksouth|UK South|Europe|United Kingdom|London|Recommended
westeurope|West Europe|Europe|Europe|Netherlands|Recommended
centralus|Central US|US|United States|Iowa|Recommended
southafricanorth|South Africa North|Africa|South Africa|Johannesburg|Recommended
centralindia|Central India|Asia Pacific|India|Pune|Recommended
eastasia|East Asia|Asia Pacific|Asia Pacific|Hong Kong|Recommended
japaneast|Japan East|Asia Pacific|Japan|Tokyo, Saitama|Recommended
koreacentral|Korea Central|Asia Pacific|Korea|Seoul|Recommended
canadacentral|Canada Central|Canada|Canada|Toronto|Recommended
francecentral|France Central|Europe|France|Paris|Recommended
germanywestcentral|Germany West Central|Europe|Germany|Frankfurt|Recommended
italynorth|Italy North|Europe|Italy|Milan|Recommended
norwayeast|Norway East|Europe|Norway|Norway|Recommended
polandcentral|Poland Central|Europe|Poland|Warsaw|Recommended
spaincentral|Spain Central|Europe|Spain|Madrid|Recommended
switzerlandnorth|Switzerland North|Europe|Switzerland|Zurich|Recommended
mexicocentral|Mexico Central|Mexico|Mexico|Querétaro State|Recommended
uaenorth|UAE North|Middle East|UAE|Dubai|Recommended
brazilsouth|Brazil South|South America|Brazil|Sao Paulo State|Recommended
israelcentral|Israel Central|Middle East|Israel|Israel|Recommended
qatarcentral|Qatar Central|Middle East|Qatar|Doha|Recommended
northcentralus|North Central US|US|United States|Illinois|Other
westus|West US|US|United States|California|Other
japanwest|Japan West|Asia Pacific|Japan|Osaka|Other
jioindiawest|Jio India West|Asia Pacific|India|Jamnagar|Other
centraluseuap|Central US EUAP|US|Canary (US)||Other
eastus2euap|East US 2 EUAP|US|Canary (US)||Other
westcentralus|West Central US|US|United States|Wyoming|Other
southafricawest|South Africa West|Africa|South Africa|Cape Town|Other
australiacentral|Australia Central|Asia Pacific|Australia|Canberra|Other
australiacentral2|Australia Central 2|Asia Pacific|Australia|Canberra|Other
australiasoutheast|Australia Southeast|Asia Pacific|Australia|Victoria|Other
koreasouth|Korea South|Asia Pacific|Korea|Busan|Other
southindia|South India|Asia Pacific|India|Chennai|Other
westindia|West India|Asia Pacific|India|Mumbai|Other
canadaeast|Canada East|Canada|Canada|Quebec|Other
francesouth|France South|Europe|France|Marseille|Other
germanynorth|Germany North|Europe|Germany|Berlin|Other
norwaywest|Norway West|Europe|Norway|Norway|Other
switzerlandwest|Switzerland West|Europe|Switzerland|Geneva|Other
ukwest|UK West|Europe|United Kingdom|Cardiff|Other
uaecentral|UAE Central|Middle East|UAE|Abu Dhabi|Other
brazilsoutheast|Brazil Southeast|South America|Brazil|Rio|Other
newzealandnorth|New Zealand North|Asia Pacific|New Zealand|Auckland|Recommended
indonesiacentral|Indonesia Central|Asia Pacific|Indonesia|Jakarta|Recommended
malaysiawest|Malaysia West|Asia Pacific|Malaysia|Kuala Lumpur|Recommended
chilecentral|Chile Central|South America|Chile|Santiago|Recommended
austriaeast|Austria East|Europe|Austria|Vienna|Recommended
belgiumcentral|Belgium Central|Europe|Belgium|Brussels|Recommended
denmarkeast|Denmark East|Europe|Denmark|Copenhagen|Recommended
brazilus|Brazil US|South America|Brazil||Other
eastusstg|East US STG|US|United States|Virginia|Other
southcentralusstg|South Central US STG|US|United States|Texas|Other
centralusstage|Central US (Stage)|US|||Logical
eastusstage|East US (Stage)|US|||Logical
eastus2stage|East US 2 (Stage)|US|||Logical
northcentralusstage|North Central US (Stage)|US|||Logical
southcentralusstage|South Central US (Stage)|US|||Logical
westusstage|West US (Stage)|US|||Logical
westus2stage|West US 2 (Stage)|US|||Logical
eastasiastage|East Asia (Stage)|Asia Pacific|||Logical
southeastasiastage|Southeast Asia (Stage)|Asia Pacific|||Logical
asia|Asia||||Logical
asiapacific|Asia Pacific||||Logical
australia|Australia||||Logical
brazil|Brazil||||Logical
canada|Canada||||Logical
europe|Europe||||Logical
france|France||||Logical
germany|Germany||||Logical
global|Global||||Logical
india|India||||Logical
israel|Israel||||Logical
italy|Italy||||Logical
japan|Japan||||Logical
korea|Korea||||Logical
newzealand|New Zealand||||Logical
norway|Norway||||Logical
poland|Poland||||Logical
qatar|Qatar||||Logical
singapore|Singapore||||Logical
southafrica|South Africa||||Logical
sweden|Sweden||||Logical
switzerland|Switzerland||||Logical
uae|United Arab Emirates||||Logical
uk|United Kingdom||||Logical
unitedstates|United States||||Logical
unitedstateseuap|United States EUAP||||Logical
"""


def _location_rows() -> tuple[tuple[str, ...], ...]:
    rows = tuple(tuple(line.split("|")) for line in _LOCATION_TABLE.strip().splitlines())
    assert {r[0] for r in rows} == REGIONS, "every region has one row"
    return rows


_LOCATIONS = _location_rows()


def display_name(location: str) -> str:
    """``West Europe`` for ``westeurope`` (the name itself when unknown)."""
    return next((r[1] for r in _LOCATIONS if r[0] == location), location)


def render_locations(subscription_id: str) -> list[dict[str, object]]:
    """The ``value`` of ``GET /subscriptions/{id}/locations`` (2022-12-01 Location model): id,
    name, type ``Region``, displayName, regionalDisplayName ``({group}) {displayName}`` and
    metadata (regionType Physical/Logical, regionCategory, geography, geographyGroup,
    physicalLocation)."""
    out: list[dict[str, object]] = []
    for name, display, group, geography, physical, category in _LOCATIONS:
        logical = category == "Logical"
        metadata: dict[str, object] = {
            "regionType": "Logical" if logical else "Physical",
            "regionCategory": "Other" if logical else category,
        }
        if geography:
            metadata["geography"] = geography
        if group:
            metadata["geographyGroup"] = group
        if physical:
            metadata["physicalLocation"] = physical
        out.append(
            {
                "id": f"/subscriptions/{subscription_id}/locations/{name}",
                "name": name,
                "type": "Region",
                "displayName": display,
                "regionalDisplayName": f"({group}) {display}" if group and not logical else display,
                "metadata": metadata,
            }
        )
    return out

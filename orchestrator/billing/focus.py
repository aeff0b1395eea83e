"""The FOCUS vocabulary gpufleet reads and writes (FinOps Open Cost and Usage Specification 1.0-1.2).

AWS Data Exports (FOCUS 1.0), Azure cost exports (FOCUS cost) and GCP's FOCUS BigQuery
view all name their columns as the spec does, plus provider columns prefixed `x_`.
"""

from __future__ import annotations

# Columns an import needs: mandatory in every FOCUS version from 1.0 to 1.2.
REQUIRED_COLUMNS = (
    "BilledCost", "EffectiveCost", "ListCost", "BillingCurrency", "BillingAccountId",
    "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ProviderName", "ServiceCategory",
)
NUMERIC_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost")
TIME_COLUMNS = ("ChargePeriodStart", "ChargePeriodEnd")
TAGS_COLUMN = "Tags"  # conditional in FOCUS; gpufleet's stacks tag every pool with `env` and `pool`
PROVIDER_1_3 = "ServiceProviderName"  # FOCUS 1.3 renamed ProviderName; accepted in its place

# Columns that first appear in a version; the newest one present names the file's version.
VERSION_MARKERS = (
    ("1.2", frozenset({"InvoiceId", "PricingCurrency", "BillingAccountType", "SubAccountType"})),
    ("1.1", frozenset({"ServiceSubcategory", "SkuMeter", "SkuPriceDetails", "CapacityReservationId",
                       "CommitmentDiscountQuantity"})),
)

# ProviderName as billing exports spell it (lower-cased) -> gpufleet's provider.
PROVIDERS = {
    "aws": "aws", "amazon web services": "aws", "amazon web services, inc.": "aws",
    "google cloud": "gcp", "google": "gcp", "gcp": "gcp", "google cloud platform": "gcp",
    "microsoft": "azure", "azure": "azure", "microsoft azure": "azure",
    "on-premises": "onprem", "local": "local",
}
# gpufleet's provider -> ProviderName in the FOCUS rows it writes (and reads back).
PROVIDER_NAMES = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Microsoft", "onprem": "On-premises", "local": "Local"}
# Capacity market -> FOCUS PricingCategory.
PRICING_CATEGORIES = {"on_demand": "Standard", "spot": "Dynamic", "reserved": "Committed", "owned": "Other"}


def provider_id(provider_name: str) -> str:
    """gpufleet's name for a FOCUS ProviderName; unknown providers keep their own, lower-cased."""
    name = provider_name.strip().lower()
    return PROVIDERS.get(name, name)


def focus_version(columns: set[str]) -> str:
    """The FOCUS version a file's columns follow (the newest whose marker columns appear, in any letter case)."""
    present = {c.lower() for c in columns}
    for version, markers in VERSION_MARKERS:
        if present & {m.lower() for m in markers}:
            return version
    return "1.0"

"""The FOCUS specification as data: the cost-and-usage columns we keep (1.0 to 1.3), their types,
allowed values and nullability, and the marks by which a header tells its version and dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    TEXT = "text"
    ENUM = "enum"
    CURRENCY = "currency"
    DECIMAL = "decimal"
    TIMESTAMP = "timestamp"
    JSON = "json"


@dataclass(frozen=True)
class Column:
    """One FOCUS column as stored.

    ``mandatory``: the header must name it (1.0 columns FOCUS calls mandatory). ``non_null``:
    FOCUS forbids a null value. ``values``: the allowed values of an enumerated column.
    """

    focus: str
    db: str
    kind: Kind
    mandatory: bool = False
    non_null: bool = False
    values: tuple[str, ...] = ()


SERVICE_CATEGORIES = (
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
    "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
    "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security",
    "Storage", "Web", "Other",
)  # fmt: skip
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
CHARGE_FREQUENCIES = ("One-Time", "Recurring", "Usage-Based")

COLUMNS: tuple[Column, ...] = (
    Column("BilledCost", "billed_cost", Kind.DECIMAL, True, True),
    Column("EffectiveCost", "effective_cost", Kind.DECIMAL, True, True),
    Column("ListCost", "list_cost", Kind.DECIMAL, True, True),
    Column("ContractedCost", "contracted_cost", Kind.DECIMAL, True, True),
    Column("BillingAccountId", "billing_account_id", Kind.TEXT, True, True),
    Column("BillingAccountName", "billing_account_name", Kind.TEXT, True),
    Column("BillingCurrency", "billing_currency", Kind.CURRENCY, True, True),
    Column("BillingPeriodStart", "billing_period_start", Kind.TIMESTAMP, True, True),
    Column("BillingPeriodEnd", "billing_period_end", Kind.TIMESTAMP, True, True),
    Column("ChargeCategory", "charge_category", Kind.ENUM, True, True, CHARGE_CATEGORIES),
    Column("ChargeClass", "charge_class", Kind.ENUM, True, values=("Correction",)),
    Column("ChargeDescription", "charge_description", Kind.TEXT, True),
    Column("ChargeFrequency", "charge_frequency", Kind.ENUM, values=CHARGE_FREQUENCIES),
    Column("ChargePeriodStart", "charge_period_start", Kind.TIMESTAMP, True, True),
    Column("ChargePeriodEnd", "charge_period_end", Kind.TIMESTAMP, True, True),
    Column("PricingQuantity", "pricing_quantity", Kind.DECIMAL, True),
    Column("PricingUnit", "pricing_unit", Kind.TEXT, True),
    Column("ListUnitPrice", "list_unit_price", Kind.DECIMAL),
    Column("ContractedUnitPrice", "contracted_unit_price", Kind.DECIMAL),
    Column("ConsumedQuantity", "consumed_quantity", Kind.DECIMAL),
    Column("ConsumedUnit", "consumed_unit", Kind.TEXT),
    Column("ProviderName", "provider_name", Kind.TEXT, True, True),
    Column("PublisherName", "publisher_name", Kind.TEXT, True),
    Column("InvoiceIssuerName", "invoice_issuer_name", Kind.TEXT, True),
    Column("RegionId", "region_id", Kind.TEXT),
    Column("RegionName", "region_name", Kind.TEXT),
    Column("AvailabilityZone", "availability_zone", Kind.TEXT),
    Column("ResourceId", "resource_id", Kind.TEXT),
    Column("ResourceName", "resource_name", Kind.TEXT),
    Column("ResourceType", "resource_type", Kind.TEXT),
    Column("ServiceCategory", "service_category", Kind.ENUM, True, values=SERVICE_CATEGORIES),
    Column("ServiceName", "service_name", Kind.TEXT, True),
    Column("SubAccountId", "sub_account_id", Kind.TEXT),
    Column("SubAccountName", "sub_account_name", Kind.TEXT),
    Column("SkuId", "sku_id", Kind.TEXT),
    Column("SkuPriceId", "sku_price_id", Kind.TEXT),
    Column("CommitmentDiscountId", "commitment_discount_id", Kind.TEXT),
    Column("Tags", "tags", Kind.JSON),
    # FOCUS 1.2: invoices, account types, and prices in the currency the provider prices in.
    Column("InvoiceId", "invoice_id", Kind.TEXT),
    Column("BillingAccountType", "billing_account_type", Kind.TEXT),
    Column("SubAccountType", "sub_account_type", Kind.TEXT),
    Column("PricingCurrency", "pricing_currency", Kind.CURRENCY),
    Column(
        "PricingCurrencyContractedUnitPrice",
        "pricing_currency_contracted_unit_price",
        Kind.DECIMAL,
    ),
    Column("PricingCurrencyEffectiveCost", "pricing_currency_effective_cost", Kind.DECIMAL),
    Column("PricingCurrencyListUnitPrice", "pricing_currency_list_unit_price", Kind.DECIMAL),
    # FOCUS 1.3: who provides and who hosts a service, split-cost allocation, contracts applied.
    Column("ServiceProviderName", "service_provider_name", Kind.TEXT),
    Column("HostProviderName", "host_provider_name", Kind.TEXT),
    Column("AllocatedMethodId", "allocated_method_id", Kind.TEXT),
    Column("AllocatedMethodDetails", "allocated_method_details", Kind.JSON),
    Column("AllocatedResourceId", "allocated_resource_id", Kind.TEXT),
    Column("AllocatedResourceName", "allocated_resource_name", Kind.TEXT),
    Column("AllocatedTags", "allocated_tags", Kind.JSON),
    Column("ContractApplied", "contract_applied", Kind.JSON),
)
BY_FOCUS = {c.focus: c for c in COLUMNS}
MANDATORY = tuple(c.focus for c in COLUMNS if c.mandatory)
# Without these a row cannot be costed or placed in time, so a header without them is refused.
COSTING = ("BilledCost", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd")
# 1.3 deprecates ProviderName in favour of ServiceProviderName: either one fills provider_name.
STAND_INS = {"ProviderName": "ServiceProviderName"}
# Mandatory columns 1.3 deprecates, and their successors: a file with the successor lacks nothing.
SUCCESSORS = {"ProviderName": "ServiceProviderName", "PublisherName": "HostProviderName"}
_KIND_ORDER = tuple(Kind)
# Stored columns grouped by kind, so a row is built from one comprehension per kind (speed).
STORED = tuple(sorted(COLUMNS, key=lambda c: _KIND_ORDER.index(c.kind)))
# What RowParser produces, per row; the import id is added as the rows are loaded.
ROW_COLUMNS = ("line", *(c.db for c in STORED))
DB_COLUMNS = ("import_id", *ROW_COLUMNS)
COST_BASES = {
    "billed": "billed_cost",
    "effective": "effective_cost",
    "list": "list_cost",
    "contracted": "contracted_cost",
}

# Columns a version introduced: the newest one present tells the file's version.
VERSION_MARKS = (
    ("1.3", frozenset({
        "ServiceProviderName", "HostProviderName", "AllocatedMethodId", "AllocatedMethodDetails",
        "AllocatedResourceId", "AllocatedResourceName", "AllocatedTags", "ContractApplied",
    })),
    ("1.2", frozenset({
        "InvoiceId", "BillingAccountType", "SubAccountType", "PricingCurrency",
        "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
        "PricingCurrencyListUnitPrice",
    })),
    ("1.1", frozenset({
        "CapacityReservationId", "CapacityReservationStatus", "CommitmentDiscountQuantity",
        "CommitmentDiscountUnit", "ServiceSubcategory", "SkuMeter", "SkuPriceDetails",
    })),
)  # fmt: skip
# FOCUS datasets other than cost and usage, by columns only they have (compared in lower case).
OTHER_DATASETS = (
    ("contract commitment", frozenset({
        "contractcommitmentid", "contractcommitmentcategory", "contractcommitmenttype",
        "contractcommitmentcost", "contractcommitmentperiodstart",
    })),
    ("billing period", frozenset({
        "billingperiodstatus", "billingperiodcreated", "billingperiodlastupdated",
    })),
)  # fmt: skip

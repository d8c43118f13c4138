"""The lead document as pydantic models: `Lead` and the objects it holds (inquiry, property,
custom attributes, family members, the transaction and its commissions).

Field names are the API's own camelCase names, every field of Lofty's Update Lead payload.
Each model forbids unknown keys and is strict; what JSON Schema can say about rules across
fields is attached here (`json_schema_extra`), while `check` words and reports them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reconciler.model.fields import (
    Birthday,
    DateTime,
    Email,
    Id,
    Int32,
    Int64,
    Language,
    LeadType,
    NumericText,
    PayType,
    Phone,
    PropertyType,
    PropertyTypeOrClear,
    Stage,
    TimeFrame,
    TransactionType,
    YesNo,
)
from reconciler.model.limits import FAMILY_LIMIT, PROPERTY_ADDRESS_FIELDS, TAG_LISTS
from reconciler.model.patterns import (
    JSON_STRING_ARRAY_PATTERN,
    NOT_BLANK_PATTERN,
    TRANSACTION_NAME_PATTERN,
    TRIMMED_NAME_PATTERN,
)


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, validate_default=False, allow_inf_nan=False
    )


class Location(_Strict):
    """An area the lead is interested in (inquiry.locations item)."""

    stateCode: str | None = None
    city: str | None = None
    zipCode: str | None = None
    county: str | None = None
    streetAddress: str | None = None
    description: str | None = None


class Inquiry(_Strict):
    """What the lead is looking for."""

    priceMin: Int64 | None = None
    priceMax: Int64 | None = None
    propertyType: list[PropertyType] | None = None
    bedroomsMin: Int32 | None = None
    bedroomsMax: Int32 | None = None
    bathroomsMin: NumericText | None = None
    bathroomsMax: NumericText | None = None
    locations: list[Location] | None = None
    id: Int64 | None = None
    leadUserId: Int64 | None = None
    modifyByAgent: bool | None = None
    createTime: DateTime | None = None
    updateTime: DateTime | None = None
    defaultValue: bool | None = None


def _non_blank(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"pattern": NOT_BLANK_PATTERN}}}


class Property(_Strict):
    """The lead's property or mailing address."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [_non_blank(name) for name in PROPERTY_ADDRESS_FIELDS]}
    )

    price: Int64 | None = None
    state: str | None = None
    city: str | None = None
    streetAddress: str | None = None
    zipCode: str | None = None
    county: str | None = None
    propertyType: PropertyTypeOrClear | None = None
    bedrooms: Int32 | None = None
    bathrooms: float | None = None
    squareFeet: Int64 | None = None
    lotSize: float | None = None
    parkingSpace: Int64 | None = None
    floors: Int32 | None = None
    mailAddress: bool | None = None
    id: Int64 | None = None
    leadUserId: Int64 | None = None
    listingId: str | None = None
    autoListingId: Int64 | None = None
    label: str | None = None
    note: str | None = None
    listingStatus: str | None = None
    labelList: str | None = None
    pictureUrl: str | None = None
    siteListingUrl: str | None = None
    labelType: str | None = None
    priceMax: Int64 | None = None
    priceMin: Int64 | None = None


class CustomAttribute(_Strict):
    """A team-defined custom field and its value for this lead."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "properties": {"attributeType": {"const": "multi_select"}},
                "required": ["attributeType"],
            },
            "then": {"properties": {"value": {"pattern": JSON_STRING_ARRAY_PATTERN}}},
        }
    )

    attributeName: Annotated[str, Field(json_schema_extra={"pattern": NOT_BLANK_PATTERN})]
    attributeType: Literal[
        "number",
        "text",
        "date",
        "anniversary_date",
        "single_select",
        "multi_select",
        "percentage",
        "currency",
    ]
    value: str
    params: str | None = None


class FamilyMember(_Strict):
    """A family member of the lead (at most 4 per lead)."""

    firstName: str
    relationship: str | None = None
    lastName: str | None = None
    phones: list[Phone] | None = None
    emails: list[Email] | None = None
    birthday: Birthday | None = None


class CustomFieldValue(_Strict):
    """A transaction custom field value."""

    id: Int64 | None = None
    value: str | None = None


class Commission(_Strict):
    """One commission line of a transaction."""

    id: Int64 | None = None
    splitPayType: PayType | None = None
    splitPayTo: Int64 | None = None
    splitPayToName: str | None = None
    payType: PayType | None = None
    payTo: Int64 | None = None
    payToName: str | None = None
    value: Int64 | None = None
    calculateType: Literal["PERCENT", "AMOUNT"] | None = None
    desc: str | None = None


class Commissions(_Strict):
    """Commission structure of a transaction."""

    preSplit: list[Commission] | None = None
    split: list[Commission] | None = None
    postSplit: list[Commission] | None = None


class Transaction(_Strict):
    """The lead's transaction (deal).

    What "documented" means for `transactionStatus`: the vendor lists no values, because
    statuses are configured per team in its pipeline and matched by name, case-sensitively,
    within the given `transactionType`; a name that does not match silently becomes the first
    status of that type. A file cannot know the team's pipeline, so it is checked for what the
    matching needs: a `transactionType` to match within, and a name as it would be written in
    the pipeline (not blank, no space around it).
    """

    model_config = ConfigDict(
        json_schema_extra={"dependencies": {"transactionStatus": ["transactionType"]}}
    )

    transactionName: Annotated[str, Field(json_schema_extra={"pattern": TRANSACTION_NAME_PATTERN})]
    transactionType: TransactionType | None = None
    homePrice: float | None = None
    transactionStatus: (
        Annotated[str, Field(json_schema_extra={"pattern": TRIMMED_NAME_PATTERN})] | None
    ) = None
    expectedCloseDate: Int64 | None = None
    closeDate: Int64 | None = None
    commissionRate: float | None = None
    gci: float | None = None
    teamRevenue: float | None = None
    agentRevenue: float | None = None
    appointmentDate: Int64 | None = None
    agreementSignedDate: Int64 | None = None
    offerDate: Int64 | None = None
    contractDate: Int64 | None = None
    appraisalDate: Int64 | None = None
    homeInspectionDate: Int64 | None = None
    escrowDate: Int64 | None = None
    expiration: Int64 | None = None
    customFields: list[CustomFieldValue] | None = None
    commissions: Commissions | None = None


class Lead(_Strict):
    """One lead document: `leadId` plus the fields of Lofty's Update Lead payload to manage."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {
                        "properties": {"ownershipScope": {"enum": ["OFFICE", "PERSONAL"]}},
                        "required": ["ownershipScope"],
                    },
                    "then": {"required": ["ownershipId"]},
                },
                {
                    "if": {
                        "properties": {"clearAllTags": {"const": True}},
                        "required": ["clearAllTags"],
                    },
                    "then": {"not": {"anyOf": [{"required": [name]} for name in TAG_LISTS]}},
                },
            ]
        }
    )

    leadId: Id
    cannotText: bool | None = None
    cannotCall: bool | None = None
    cannotEmail: bool | None = None
    firstName: str | None = None
    lastName: str | None = None
    emails: list[Email] | None = None
    phones: list[Phone] | None = None
    leadTypes: list[LeadType] | None = None
    assignedUserId: Id | None = None
    streetAddress: str | None = None
    city: str | None = None
    state: str | None = None
    zipCode: str | None = None
    referredBy: str | None = None
    isHidden: bool | None = None
    stage: Stage | None = None
    groups: list[str] | None = None
    segments: list[str] | None = None
    tags: list[str] | None = None
    tagsAdd: list[str] | None = None
    tagsRemove: list[str] | None = None
    clearAllTags: bool | None = None
    source: str | None = None
    inquiry: Inquiry | None = None
    property: Property | None = None
    customAttributeList: list[CustomAttribute] | None = None
    birthday: Birthday | None = None
    buyingTimeFrame: TimeFrame | None = None
    preQual: YesNo | None = None
    houseToSell: YesNo | None = None
    fthb: YesNo | None = None
    withBuyerAgent: YesNo | None = None
    sellingTimeFrame: TimeFrame | None = None
    mortgage: YesNo | None = None
    buyHouse: YesNo | None = None
    withListingAgent: YesNo | None = None
    leadFamilyMemberList: Annotated[list[FamilyMember], Field(max_length=FAMILY_LIMIT)] | None = (
        None
    )
    language: Language | None = None
    ownershipId: Int64 | None = None
    ownershipScope: Literal["TEAM", "OFFICE", "PERSONAL"] | None = None
    unsubscription: bool | None = None
    leadTransaction: Transaction | None = None

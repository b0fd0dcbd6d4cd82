"""The emulated org's objects and fields, and their describe shapes (salesforce-api.md §2.3, §2.4, §3).

Every field object of a describe carries the full key set of a real recording: a defaults dict
plus per-field overrides.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .ids import KEY_PREFIXES

OPPORTUNITY_STAGES: list[dict[str, Any]] = [
    # value, probability, forecast category (API value, label), closed, won
    {
        "value": "Prospecting",
        "probability": 10,
        "forecast": ("Pipeline", "Pipeline"),
        "closed": False,
        "won": False,
    },
    {
        "value": "Qualification",
        "probability": 10,
        "forecast": ("Pipeline", "Pipeline"),
        "closed": False,
        "won": False,
    },
    {
        "value": "Needs Analysis",
        "probability": 20,
        "forecast": ("Pipeline", "Pipeline"),
        "closed": False,
        "won": False,
    },
    {
        "value": "Value Proposition",
        "probability": 50,
        "forecast": ("Pipeline", "Pipeline"),
        "closed": False,
        "won": False,
    },
    {
        "value": "Id. Decision Makers",
        "probability": 60,
        "forecast": ("Pipeline", "Pipeline"),
        "closed": False,
        "won": False,
    },
    {
        "value": "Perception Analysis",
        "probability": 70,
        "forecast": ("Pipeline", "Pipeline"),
        "closed": False,
        "won": False,
    },
    {
        "value": "Proposal/Price Quote",
        "probability": 75,
        "forecast": ("BestCase", "Best Case"),
        "closed": False,
        "won": False,
    },
    {
        "value": "Negotiation/Review",
        "probability": 90,
        "forecast": ("Forecast", "Commit"),
        "closed": False,
        "won": False,
    },
    {
        "value": "Closed Won",
        "probability": 100,
        "forecast": ("Closed", "Closed"),
        "closed": True,
        "won": True,
    },
    {
        "value": "Closed Lost",
        "probability": 0,
        "forecast": ("Omitted", "Omitted"),
        "closed": True,
        "won": False,
    },
]
STAGES_BY_NAME = {stage["value"]: stage for stage in OPPORTUNITY_STAGES}
OPPORTUNITY_TYPES = [
    "Existing Customer - Upgrade",
    "Existing Customer - Replacement",
    "Existing Customer - Downgrade",
    "New Customer",
]
LEAD_SOURCES = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"]
CONTACT_ROLES = [
    "Business User",
    "Decision Maker",
    "Economic Buyer",
    "Economic Decision Maker",
    "Evaluator",
    "Executive Sponsor",
    "Influencer",
    "Technical Buyer",
    "Other",
]
LEAD_STATUSES = [
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
]
INDUSTRIES = [
    "Agriculture",
    "Banking",
    "Technology",
    "Energy",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Media",
]
CURRENCIES = ["USD", "EUR", "GBP", "JPY"]

FIELD_DEFAULTS: dict[str, Any] = {
    "aggregatable": True,
    "aiPredictionField": False,
    "autoNumber": False,
    "byteLength": 0,
    "calculated": False,
    "calculatedFormula": None,
    "cascadeDelete": False,
    "caseSensitive": False,
    "compoundFieldName": None,
    "controllerName": None,
    "createable": True,
    "custom": False,
    "defaultValue": None,
    "defaultValueFormula": None,
    "defaultedOnCreate": False,
    "dependentPicklist": False,
    "deprecatedAndHidden": False,
    "digits": 0,
    "displayLocationInDecimal": False,
    "encrypted": False,
    "externalId": False,
    "extraTypeInfo": None,
    "filterable": True,
    "filteredLookupInfo": None,
    "formulaTreatNullNumberAsZero": False,
    "groupable": True,
    "highScaleNumber": False,
    "htmlFormatted": False,
    "idLookup": False,
    "inlineHelpText": None,
    "label": "",
    "length": 0,
    "mask": None,
    "maskType": None,
    "name": "",
    "nameField": False,
    "namePointing": False,
    "nillable": True,
    "permissionable": True,
    "picklistValues": [],
    "polymorphicForeignKey": False,
    "precision": 0,
    "queryByDistance": False,
    "referenceTargetField": None,
    "referenceTo": [],
    "relationshipName": None,
    "relationshipOrder": None,
    "restrictedDelete": False,
    "restrictedPicklist": False,
    "scale": 0,
    "searchPrefilterable": False,
    "soapType": "xsd:string",
    "sortable": True,
    "type": "string",
    "unique": False,
    "updateable": True,
    "writeRequiresMasterRead": False,
}

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "string": "xsd:string",
    "textarea": "xsd:string",
    "picklist": "xsd:string",
    "multipicklist": "xsd:string",
    "email": "xsd:string",
    "phone": "xsd:string",
    "url": "xsd:string",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "address": "urn:address",
}


@dataclass
class FieldSpec:
    """One field of an emulated object."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    updateable: bool = True
    createable: bool = True
    custom: bool = False
    calculated: bool = False
    picklist: list[str] = field(default_factory=list)
    reference_to: list[str] = field(default_factory=list)
    relationship_name: str | None = None
    # The compound field a component belongs to (MailingCity -> MailingAddress).
    compound_field_name: str | None = None

    @property
    def filterable(self) -> bool:
        return self.type not in ("address", "location") and (self.type != "textarea" or self.length <= 255)

    @property
    def sortable(self) -> bool:
        return self.type not in ("textarea", "multipicklist", "address", "location")

    def describe(self) -> dict[str, Any]:
        result = copy.deepcopy(FIELD_DEFAULTS)
        byte_length = (
            self.length * 3 if self.type in ("string", "textarea", "picklist", "email", "phone", "url") else 0
        )
        if self.type in ("id", "reference"):
            byte_length = 18
        result.update(
            {
                "name": self.name,
                "type": self.type,
                "label": self.label or _label(self.name),
                "length": self.length,
                "byteLength": byte_length,
                "precision": self.precision,
                "scale": self.scale,
                "nillable": self.nillable,
                "updateable": self.updateable,
                "createable": self.createable,
                "custom": self.custom,
                "calculated": self.calculated,
                "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
                "referenceTo": list(self.reference_to),
                "relationshipName": self.relationship_name,
                "picklistValues": [
                    {"active": True, "defaultValue": False, "label": value, "validFor": None, "value": value}
                    for value in self.picklist
                ],
                "restrictedPicklist": bool(self.picklist),
                "idLookup": self.type == "id",
                "nameField": self.name == "Name",
                "digits": 9 if self.type == "int" else 0,
                "defaultedOnCreate": self.type == "boolean" or self.name in ("Id", "OwnerId"),
                "sortable": self.sortable,
                "groupable": self.type
                not in ("textarea", "double", "currency", "percent", "datetime", "address", "location"),
                "aggregatable": self.type not in ("textarea", "address", "location"),
                "filterable": self.filterable,
                "compoundFieldName": self.compound_field_name,
            }
        )
        if self.type == "boolean":
            result["defaultValue"] = False
        return result


def _label(api_name: str) -> str:
    base = api_name.removesuffix("__c").removesuffix("Id") or api_name
    out = ""
    for index, char in enumerate(base):
        if index and char.isupper() and not base[index - 1].isupper():
            out += " "
        out += char
    return out.replace("_", " ").strip()


def _audit_fields() -> list[FieldSpec]:
    return [
        FieldSpec("IsDeleted", "boolean", "Deleted", nillable=False, updateable=False, createable=False),
        FieldSpec(
            "CreatedDate", "datetime", "Created Date", nillable=False, updateable=False, createable=False
        ),
        FieldSpec(
            "CreatedById",
            "reference",
            "Created By ID",
            18,
            reference_to=["User"],
            relationship_name="CreatedBy",
            nillable=False,
            updateable=False,
            createable=False,
        ),
        FieldSpec(
            "LastModifiedDate",
            "datetime",
            "Last Modified Date",
            nillable=False,
            updateable=False,
            createable=False,
        ),
        FieldSpec(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            18,
            reference_to=["User"],
            relationship_name="LastModifiedBy",
            nillable=False,
            updateable=False,
            createable=False,
        ),
        FieldSpec(
            "SystemModstamp",
            "datetime",
            "System Modstamp",
            nillable=False,
            updateable=False,
            createable=False,
        ),
    ]


def _id_field(label: str) -> FieldSpec:
    return FieldSpec("Id", "id", label, 18, nillable=False, updateable=False, createable=False)


def _owner() -> FieldSpec:
    return FieldSpec(
        "OwnerId",
        "reference",
        "Owner ID",
        18,
        reference_to=["User"],
        relationship_name="Owner",
        nillable=False,
    )


def _address(prefix: str) -> list[FieldSpec]:
    compound = f"{prefix}Address"
    return [
        FieldSpec(f"{prefix}Street", "textarea", f"{prefix} Street", 255, compound_field_name=compound),
        FieldSpec(f"{prefix}City", "string", f"{prefix} City", 40, compound_field_name=compound),
        FieldSpec(f"{prefix}State", "string", f"{prefix} State/Province", 80, compound_field_name=compound),
        FieldSpec(
            f"{prefix}PostalCode", "string", f"{prefix} Zip/Postal Code", 20, compound_field_name=compound
        ),
        FieldSpec(f"{prefix}Country", "string", f"{prefix} Country", 80, compound_field_name=compound),
        FieldSpec(compound, "address", f"{prefix} Address", updateable=False, createable=False),
    ]


def _ro(spec: FieldSpec) -> FieldSpec:
    spec.updateable = False
    spec.createable = False
    return spec


STANDARD_FIELDS: dict[str, list[FieldSpec]] = {
    "Account": [
        _id_field("Account ID"),
        FieldSpec("Name", "string", "Account Name", 255, nillable=False),
        FieldSpec(
            "Type",
            "picklist",
            "Account Type",
            255,
            picklist=["Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other"],
        ),
        FieldSpec("Industry", "picklist", "Industry", 255, picklist=INDUSTRIES),
        FieldSpec("AnnualRevenue", "currency", "Annual Revenue", precision=18),
        FieldSpec("NumberOfEmployees", "int", "Employees", 8),
        FieldSpec("Website", "url", "Website", 255),
        *_address("Billing"),
        _owner(),
        *_audit_fields(),
    ],
    "Contact": [
        _id_field("Contact ID"),
        FieldSpec(
            "MasterRecordId",
            "reference",
            "Master Record ID",
            18,
            reference_to=["Contact"],
            relationship_name="MasterRecord",
            updateable=False,
            createable=False,
        ),
        FieldSpec(
            "AccountId", "reference", "Account ID", 18, reference_to=["Account"], relationship_name="Account"
        ),
        FieldSpec(
            "Salutation", "picklist", "Salutation", 40, picklist=["Mr.", "Ms.", "Mrs.", "Dr.", "Prof."]
        ),
        FieldSpec("FirstName", "string", "First Name", 40),
        FieldSpec("LastName", "string", "Last Name", 80, nillable=False),
        _ro(FieldSpec("Name", "string", "Full Name", 121, nillable=False)),
        FieldSpec("Email", "email", "Email", 80),
        FieldSpec("Phone", "phone", "Business Phone", 40),
        FieldSpec("MobilePhone", "phone", "Mobile Phone", 40),
        FieldSpec("Title", "string", "Title", 128),
        FieldSpec("Department", "string", "Department", 80),
        FieldSpec("LeadSource", "picklist", "Lead Source", 255, picklist=LEAD_SOURCES),
        FieldSpec("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False),
        FieldSpec("Description", "textarea", "Contact Description", 32000),
        *_address("Mailing"),
        _owner(),
        *_audit_fields(),
    ],
    "Lead": [
        _id_field("Lead ID"),
        FieldSpec(
            "MasterRecordId",
            "reference",
            "Master Record ID",
            18,
            reference_to=["Lead"],
            relationship_name="MasterRecord",
            updateable=False,
            createable=False,
        ),
        FieldSpec(
            "Salutation", "picklist", "Salutation", 40, picklist=["Mr.", "Ms.", "Mrs.", "Dr.", "Prof."]
        ),
        FieldSpec("FirstName", "string", "First Name", 40),
        FieldSpec("LastName", "string", "Last Name", 80, nillable=False),
        _ro(FieldSpec("Name", "string", "Full Name", 121, nillable=False)),
        FieldSpec("Company", "string", "Company", 255, nillable=False),
        FieldSpec("Email", "email", "Email", 80),
        FieldSpec("Phone", "phone", "Phone", 40),
        FieldSpec("Title", "string", "Title", 128),
        FieldSpec("Status", "picklist", "Lead Status", 255, nillable=False, picklist=LEAD_STATUSES),
        FieldSpec("LeadSource", "picklist", "Lead Source", 255, picklist=LEAD_SOURCES),
        FieldSpec("Industry", "picklist", "Industry", 255, picklist=INDUSTRIES),
        FieldSpec("Rating", "picklist", "Rating", 255, picklist=["Hot", "Warm", "Cold"]),
        FieldSpec("AnnualRevenue", "currency", "Annual Revenue", precision=18),
        _ro(FieldSpec("IsConverted", "boolean", "Converted", nillable=False)),
        _ro(FieldSpec("ConvertedDate", "date", "Converted Date")),
        _ro(
            FieldSpec(
                "ConvertedAccountId",
                "reference",
                "Converted Account ID",
                18,
                reference_to=["Account"],
                relationship_name="ConvertedAccount",
            )
        ),
        _ro(
            FieldSpec(
                "ConvertedContactId",
                "reference",
                "Converted Contact ID",
                18,
                reference_to=["Contact"],
                relationship_name="ConvertedContact",
            )
        ),
        _ro(
            FieldSpec(
                "ConvertedOpportunityId",
                "reference",
                "Converted Opportunity ID",
                18,
                reference_to=["Opportunity"],
                relationship_name="ConvertedOpportunity",
            )
        ),
        FieldSpec("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False),
        *_address(""),
        _owner(),
        *_audit_fields(),
    ],
    "Opportunity": [
        _id_field("Opportunity ID"),
        FieldSpec(
            "AccountId", "reference", "Account ID", 18, reference_to=["Account"], relationship_name="Account"
        ),
        FieldSpec("Name", "string", "Name", 120, nillable=False),
        FieldSpec("Description", "textarea", "Description", 32000),
        FieldSpec(
            "StageName",
            "picklist",
            "Stage",
            255,
            nillable=False,
            picklist=[s["value"] for s in OPPORTUNITY_STAGES],
        ),
        FieldSpec("Amount", "currency", "Amount", precision=18, scale=2),
        FieldSpec("Probability", "percent", "Probability (%)", precision=3, scale=0),
        _ro(
            FieldSpec(
                "ExpectedRevenue", "currency", "Expected Amount", precision=18, scale=2, calculated=True
            )
        ),
        FieldSpec("TotalOpportunityQuantity", "double", "Quantity", precision=18, scale=2),
        FieldSpec("CloseDate", "date", "Close Date", nillable=False),
        FieldSpec("Type", "picklist", "Opportunity Type", 255, picklist=OPPORTUNITY_TYPES),
        FieldSpec("NextStep", "string", "Next Step", 255),
        FieldSpec("LeadSource", "picklist", "Lead Source", 255, picklist=LEAD_SOURCES),
        _ro(FieldSpec("IsClosed", "boolean", "Closed", nillable=False)),
        _ro(FieldSpec("IsWon", "boolean", "Won", nillable=False)),
        FieldSpec(
            "ForecastCategory",
            "picklist",
            "Forecast Category",
            40,
            nillable=False,
            picklist=["Omitted", "Pipeline", "BestCase", "Forecast", "Closed"],
        ),
        FieldSpec(
            "ForecastCategoryName",
            "picklist",
            "Forecast Category",
            255,
            picklist=["Omitted", "Pipeline", "Best Case", "Commit", "Closed"],
        ),
        FieldSpec(
            "CampaignId",
            "reference",
            "Campaign ID",
            18,
            reference_to=["Campaign"],
            relationship_name="Campaign",
        ),
        _ro(FieldSpec("HasOpportunityLineItem", "boolean", "Has Line Item", nillable=False)),
        FieldSpec("IsPrivate", "boolean", "Private", nillable=False),
        _ro(FieldSpec("FiscalQuarter", "int", "Fiscal Quarter", 8)),
        _ro(FieldSpec("FiscalYear", "int", "Fiscal Year", 8)),
        _ro(FieldSpec("Fiscal", "string", "Fiscal Period", 6)),
        _ro(FieldSpec("LastStageChangeDate", "datetime", "Last Stage Change Date")),
        _owner(),
        *_audit_fields(),
    ],
    "OpportunityContactRole": [
        _id_field("Contact Role ID"),
        FieldSpec(
            "OpportunityId",
            "reference",
            "Opportunity ID",
            18,
            reference_to=["Opportunity"],
            relationship_name="Opportunity",
            nillable=False,
            updateable=False,
        ),
        FieldSpec(
            "ContactId",
            "reference",
            "Contact ID",
            18,
            reference_to=["Contact"],
            relationship_name="Contact",
            nillable=False,
        ),
        FieldSpec("Role", "picklist", "Role", 255, picklist=CONTACT_ROLES),
        FieldSpec("IsPrimary", "boolean", "Primary", nillable=False),
        *_audit_fields(),
    ],
    "User": [
        _id_field("User ID"),
        FieldSpec("Username", "string", "Username", 80, nillable=False),
        FieldSpec("FirstName", "string", "First Name", 40),
        FieldSpec("LastName", "string", "Last Name", 80, nillable=False),
        _ro(FieldSpec("Name", "string", "Full Name", 121, nillable=False)),
        FieldSpec("Email", "email", "Email", 128, nillable=False),
        FieldSpec("IsActive", "boolean", "Active", nillable=False),
        *_audit_fields(),
    ],
}

OBJECT_LABELS = {
    "Account": ("Account", "Accounts"),
    "Contact": ("Contact", "Contacts"),
    "Lead": ("Lead", "Leads"),
    "Opportunity": ("Opportunity", "Opportunities"),
    "OpportunityContactRole": ("Opportunity Contact Role", "Opportunity Contact Roles"),
    "User": ("User", "Users"),
}
OBJECT_NAMES = list(OBJECT_LABELS)

# Which relationship names lead from which object to which, for `SELECT Account.Name FROM Opportunity`.
MULTI_CURRENCY_OBJECTS = ["Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole"]


def currency_field() -> FieldSpec:
    return FieldSpec("CurrencyIsoCode", "picklist", "Currency ISO Code", 3, picklist=CURRENCIES)


def custom_field_spec(definition: dict[str, Any]) -> FieldSpec:
    """A custom field added at run time by the control API."""
    field_type = definition.get("type", "string")
    defaults = {"string": 255, "picklist": 255, "textarea": 32768, "email": 80, "url": 255, "phone": 40}
    return FieldSpec(
        name=definition["name"],
        type=field_type,
        label=definition.get("label") or _label(definition["name"]),
        length=int(definition.get("length", defaults.get(field_type, 0))),
        precision=int(
            definition.get("precision", 18 if field_type in ("currency", "double", "percent", "int") else 0)
        ),
        scale=int(definition.get("scale", 2 if field_type in ("currency", "double") else 0)),
        custom=True,
        calculated=bool(definition.get("calculated", False)),
        picklist=list(definition.get("values", [])),
        reference_to=list(definition.get("reference_to", [])),
    )


def describe_global_entry(name: str, version: str) -> dict[str, Any]:
    label, plural = OBJECT_LABELS[name]
    base = f"/services/data/v{version}/sobjects/{name}"
    return {
        "activateable": False,
        "createable": True,
        "custom": False,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": True,
        "deprecatedAndHidden": False,
        "feedEnabled": name != "OpportunityContactRole",
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": KEY_PREFIXES[name],
        "label": label,
        "labelPlural": plural,
        "layoutable": True,
        "mergeable": name in ("Account", "Contact", "Lead"),
        "mruEnabled": True,
        "name": name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": name != "OpportunityContactRole",
        "triggerable": True,
        "undeletable": name != "OpportunityContactRole",
        "updateable": True,
        "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
    }


def describe_object(name: str, version: str, fields: list[FieldSpec]) -> dict[str, Any]:
    entry = describe_global_entry(name, version)
    entry.update(
        {
            "actionOverrides": [],
            "associateEntityType": None,
            "associateParentEntity": None,
            "childRelationships": child_relationships(name),
            "compactLayoutable": True,
            "defaultImplementation": None,
            "extendedBy": None,
            "extendsInterfaces": None,
            "fields": [spec.describe() for spec in fields],
            "implementedBy": None,
            "implementsInterfaces": None,
            "listviewable": None,
            "lookupLayoutable": None,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "recordTypeInfos": [],
            "searchLayoutable": True,
            "sobjectDescribeOption": "FULL",
            "supportedScopes": [],
        }
    )
    entry["urls"].update(
        {"compactLayouts": f"/services/data/v{version}/sobjects/{name}/describe/compactLayouts"}
    )
    return entry


def address_value(spec: FieldSpec, record: dict[str, Any]) -> dict[str, Any] | None:
    """A compound address field as REST returns it: an object of its components. Salesforce's
    documentation shows the object and not the all-empty case; an address with no component set
    is null here, as records without an address come back from real orgs."""
    prefix = spec.name.removesuffix("Address")
    components = {
        "city": record.get(f"{prefix}City"),
        "country": record.get(f"{prefix}Country"),
        "geocodeAccuracy": None,
        "latitude": None,
        "longitude": None,
        "postalCode": record.get(f"{prefix}PostalCode"),
        "state": record.get(f"{prefix}State"),
        "street": record.get(f"{prefix}Street"),
    }
    return components if any(v is not None for v in components.values()) else None


# Child relationship names of the standard objects (the parent's side of a lookup); a lookup
# without one still appears in describe, with relationshipName null, as Salesforce lists it.
_CHILD_RELATIONSHIP_NAMES = {
    ("Contact", "AccountId"): "Contacts",
    ("Opportunity", "AccountId"): "Opportunities",
    ("OpportunityContactRole", "OpportunityId"): "OpportunityContactRoles",
    ("OpportunityContactRole", "ContactId"): "OpportunityContactRoles",
}
_CASCADE_DELETE = {("OpportunityContactRole", "OpportunityId"), ("OpportunityContactRole", "ContactId")}


def child_relationships(parent: str) -> list[dict[str, Any]]:
    """describe's `childRelationships` of `parent`: every standard lookup pointing at it."""
    found = []
    for child, specs in STANDARD_FIELDS.items():
        for spec in specs:
            if spec.type != "reference" or parent not in spec.reference_to or spec.name == "Id":
                continue
            found.append(
                {
                    "cascadeDelete": (child, spec.name) in _CASCADE_DELETE,
                    "childSObject": child,
                    "deprecatedAndHidden": False,
                    "field": spec.name,
                    "junctionIdListNames": [],
                    "junctionReferenceTo": [],
                    "relationshipName": _CHILD_RELATIONSHIP_NAMES.get((child, spec.name)),
                    "restrictedDelete": False,
                }
            )
    return found


def child_relationship(parent: str, name: str) -> tuple[str, str] | None:
    """(child object, its lookup field) for a child relationship name of `parent`, any case."""
    for entry in child_relationships(parent):
        if entry["relationshipName"] and entry["relationshipName"].lower() == name.lower():
            return entry["childSObject"], entry["field"]
    return None

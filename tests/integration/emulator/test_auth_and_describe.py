"""OAuth token shapes, sessions, describe with field-level security and custom fields."""

from __future__ import annotations

import time

import jwt
import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest

from salesforce_emulator.ids import is_valid_id
from tests.integration.conftest import CLIENT_ID, CLIENT_SECRET, https_session, login

pytestmark = pytest.mark.integration

# salesforce-api.md §2.4: the per-field key set of a real recorded describe.
FIELD_KEYS = {
    "aggregatable",
    "aiPredictionField",
    "autoNumber",
    "byteLength",
    "calculated",
    "calculatedFormula",
    "cascadeDelete",
    "caseSensitive",
    "compoundFieldName",
    "controllerName",
    "createable",
    "custom",
    "defaultValue",
    "defaultValueFormula",
    "defaultedOnCreate",
    "dependentPicklist",
    "deprecatedAndHidden",
    "digits",
    "displayLocationInDecimal",
    "encrypted",
    "externalId",
    "extraTypeInfo",
    "filterable",
    "filteredLookupInfo",
    "formulaTreatNullNumberAsZero",
    "groupable",
    "highScaleNumber",
    "htmlFormatted",
    "idLookup",
    "inlineHelpText",
    "label",
    "length",
    "mask",
    "maskType",
    "name",
    "nameField",
    "namePointing",
    "nillable",
    "permissionable",
    "picklistValues",
    "polymorphicForeignKey",
    "precision",
    "queryByDistance",
    "referenceTargetField",
    "referenceTo",
    "relationshipName",
    "relationshipOrder",
    "restrictedDelete",
    "restrictedPicklist",
    "scale",
    "searchPrefilterable",
    "soapType",
    "sortable",
    "type",
    "unique",
    "updateable",
    "writeRequiresMasterRead",
}
OBJECT_KEYS = {
    "actionOverrides",
    "activateable",
    "associateEntityType",
    "associateParentEntity",
    "childRelationships",
    "compactLayoutable",
    "createable",
    "custom",
    "customSetting",
    "deepCloneable",
    "defaultImplementation",
    "deletable",
    "deprecatedAndHidden",
    "extendedBy",
    "extendsInterfaces",
    "feedEnabled",
    "fields",
    "hasSubtypes",
    "implementedBy",
    "implementsInterfaces",
    "isInterface",
    "isSubtype",
    "keyPrefix",
    "label",
    "labelPlural",
    "layoutable",
    "listviewable",
    "lookupLayoutable",
    "mergeable",
    "mruEnabled",
    "name",
    "namedLayoutInfos",
    "networkScopeFieldName",
    "queryable",
    "recordTypeInfos",
    "replicateable",
    "retrieveable",
    "searchLayoutable",
    "searchable",
    "sobjectDescribeOption",
    "supportedScopes",
    "triggerable",
    "undeletable",
    "updateable",
    "urls",
}


def test_client_credentials_token_has_the_real_shape(emulator):
    token = login(emulator)
    assert set(token) >= {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}
    assert token["token_type"] == "Bearer"
    assert not token["instance_url"].endswith("/")
    assert "-api" not in token["instance_url"]
    assert token["access_token"].startswith("00D")


def test_client_credentials_by_basic_auth_and_bad_secret(emulator):
    http = https_session(emulator.ca_file)
    url = f"{emulator.instance_url}/services/oauth2/token"
    ok = http.post(
        url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10
    )
    assert ok.status_code == 200
    bad = http.post(
        url,
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "nope"},
        timeout=10,
    )
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}
    unsupported = http.post(url, data={"grant_type": "magic"}, timeout=10)
    assert unsupported.json()["error"] == "unsupported_grant_type"


def test_jwt_bearer_flow(emulator, emulator_process):
    key = (emulator_process.data_dir / "jwt-private-key.pem").read_bytes()
    http = https_session(emulator.ca_file)
    url = f"{emulator.instance_url}/services/oauth2/token"
    claims = {
        "iss": CLIENT_ID,
        "sub": "integration@oppsync.example",
        "aud": emulator.instance_url,
        "exp": int(time.time()) + 180,
    }
    good = http.post(
        url,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt.encode(claims, key, algorithm="RS256"),
        },
        timeout=10,
    )
    assert good.status_code == 200, good.text
    assert good.json()["access_token"]
    wrong_user = jwt.encode({**claims, "sub": "someone@else"}, key, algorithm="RS256")
    bad = http.post(
        url,
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": wrong_user},
        timeout=10,
    )
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


def test_an_expired_session_gives_401_invalid_session_id(emulator, sf):
    sf.query("SELECT Id FROM User")
    emulator.faults(expire_sessions=True)
    with pytest.raises(SalesforceExpiredSession) as error:
        sf.query("SELECT Id FROM User")
    assert error.value.status == 401
    assert error.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    assert error.value.content[0]["message"] == "Session expired or invalid"


def test_sessions_expire_after_their_configured_lifetime(emulator):
    emulator.faults(session_seconds=1)
    token = login(emulator)
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=https_session(emulator.ca_file),
        version="59.0",
    )
    sf.query("SELECT Id FROM User")
    time.sleep(1.2)
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User")
    emulator.faults(session_seconds=7200)


def test_describe_global_lists_the_objects(sf):
    described = sf.describe()
    names = {o["name"] for o in described["sobjects"]}
    assert {"Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "User"} <= names
    opportunity = next(o for o in described["sobjects"] if o["name"] == "Opportunity")
    assert opportunity["keyPrefix"] == "006"
    assert opportunity["urls"]["describe"] == "/services/data/v59.0/sobjects/Opportunity/describe"


@pytest.mark.parametrize(
    "sobject", ["Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "User"]
)
def test_describe_has_the_full_key_sets(sf, sobject):
    described = getattr(sf, sobject).describe()
    assert set(described) >= OBJECT_KEYS
    for field in described["fields"]:
        assert set(field) == FIELD_KEYS, field["name"]


def test_describe_field_shapes_match_the_reference(sf):
    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert fields["AccountId"]["type"] == "reference"
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["AccountId"]["relationshipName"] == "Account"
    assert fields["Amount"]["type"] == "currency"
    assert (fields["Amount"]["precision"], fields["Amount"]["scale"], fields["Amount"]["soapType"]) == (
        18,
        2,
        "xsd:double",
    )
    assert (fields["Probability"]["type"], fields["Probability"]["precision"]) == ("percent", 3)
    stage_values = [p["value"] for p in fields["StageName"]["picklistValues"]]
    assert "Closed Won" in stage_values
    assert set(fields["StageName"]["picklistValues"][0]) == {
        "active",
        "defaultValue",
        "label",
        "validFor",
        "value",
    }
    assert "CurrencyIsoCode" not in fields


def test_a_hidden_field_leaves_describe_and_is_invalid_in_a_query(emulator, sf):
    emulator.hide_field("Opportunity", "NextStep")
    try:
        names = {f["name"] for f in sf.Opportunity.describe()["fields"]}
        assert "NextStep" not in names
        with pytest.raises(SalesforceMalformedRequest) as error:
            sf.query("SELECT Id, NextStep FROM Opportunity")
        assert error.value.content[0]["errorCode"] == "INVALID_FIELD"
        assert "No such column 'NextStep' on entity 'Opportunity'" in error.value.content[0]["message"]
    finally:
        emulator.hide_field("Opportunity", "NextStep", hidden=False)
    assert "NextStep" in {f["name"] for f in sf.Opportunity.describe()["fields"]}


def test_a_custom_field_added_at_run_time_appears_and_can_be_queried(emulator, sf):
    emulator.add_field("Opportunity", "Region__c", "picklist", values=["EMEA", "AMER", "APAC"])
    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert fields["Region__c"]["custom"] is True
    assert [p["value"] for p in fields["Region__c"]["picklistValues"]] == ["EMEA", "AMER", "APAC"]
    [opportunity_id] = emulator.create(
        "Opportunity",
        {"Name": "Regional", "StageName": "Prospecting", "CloseDate": "2030-01-01", "Region__c": "EMEA"},
    )
    result = sf.query(f"SELECT Id, Region__c FROM Opportunity WHERE Id = '{opportunity_id}'")
    assert result["records"][0]["Region__c"] == "EMEA"


def test_multi_currency_switch_adds_currency_iso_code(emulator, sf):
    emulator.multi_currency(True)
    try:
        fields = {f["name"] for f in sf.Opportunity.describe()["fields"]}
        assert "CurrencyIsoCode" in fields
        records = sf.query("SELECT Id, CurrencyIsoCode FROM Opportunity LIMIT 1")["records"]
        assert all(r["CurrencyIsoCode"] == "USD" for r in records)
    finally:
        emulator.multi_currency(False)
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Id, CurrencyIsoCode FROM Opportunity")


def test_ids_are_18_characters_with_prefix_and_checksum(emulator):
    [account] = emulator.create("Account", {"Name": "Acme"})
    [contact] = emulator.create("Contact", {"LastName": "Doe", "AccountId": account})
    [lead] = emulator.create("Lead", {"LastName": "Lee", "Company": "L"})
    assert account.startswith("001") and contact.startswith("003") and lead.startswith("00Q")
    assert all(is_valid_id(i) for i in (account, contact, lead))

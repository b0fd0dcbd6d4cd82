"""The emulator's Pub/Sub API against salesforce-api.md §5 and §5.1, read literally, with a second
client (grpcio stubs of eventbus/ and the plain avro decoder): metadata, GetTopic/GetSchema,
payloads decoded with the schema fetched by id, flow control, keepalives, replay presets, and the
change events of every write path."""

from __future__ import annotations

import json
import queue
import time

import grpc
import pytest

from eventbus import pubsub_api_pb2 as pb
from tests.integration.conftest import https_session, login
from tests.integration.emulator.pubsub_client import (
    CHANGE_TOPICS,
    Client,
    decoded_header,
    schema_field_names,
    trailer,
)

pytestmark = pytest.mark.integration

OPPORTUNITIES = CHANGE_TOPICS["Opportunity"]
CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"


def new_opportunity(emulator, name: str = "Pub/Sub deal", **extra) -> str:
    values = {"Name": name, "StageName": "Prospecting", "CloseDate": "2027-03-31", **extra}
    return emulator.create("Opportunity", values)[0]


def test_get_topic_and_get_schema_follow_describe(pubsub, sf, emulator):
    for sobject, topic_name in CHANGE_TOPICS.items():
        topic = pubsub.topic(topic_name)
        assert topic.topic_name == topic_name
        assert topic.tenant_guid == login(emulator)["id"].split("/")[-2]
        assert topic.can_subscribe and not topic.can_publish
        assert topic.rpc_id
        info = pubsub.stub.GetSchema(pb.SchemaRequest(schema_id=topic.schema_id), metadata=pubsub.metadata)
        schema = json.loads(info.schema_json)
        assert info.schema_id == topic.schema_id
        assert schema["name"] == f"{sobject}ChangeEvent"
        assert schema["fields"][0]["name"] == "ChangeEventHeader"
        header = [field["name"] for field in schema["fields"][0]["type"]["fields"]]
        assert header == [
            "entityName",
            "recordIds",
            "changeType",
            "changeOrigin",
            "transactionKey",
            "sequenceNumber",
            "commitTimestamp",
            "commitNumber",
            "commitUser",
            "nulledFields",
            "diffFields",
            "changedFields",
        ]
        # Each of the record's fields is optional: a union with null.
        assert all(field["type"][0] == "null" for field in schema["fields"][1:])
        described = {
            field["name"]
            for field in getattr(sf, sobject).describe()["fields"]
            if not field["calculated"] and field["type"] not in ("address", "location")
        }
        names = set(schema_field_names(info.schema_json)[1:])
        # Not in events (§5.1): SystemModstamp, IsDeleted; the record's id is in the header.
        assert names == described - {"Id", "SystemModstamp", "IsDeleted"}


def test_a_new_field_changes_the_schema_id_and_a_hidden_one_leaves_it(pubsub, emulator):
    before = pubsub.topic(CHANGE_TOPICS["Lead"]).schema_id
    emulator.add_field("Lead", "PubSub_Score__c", "double", label="Score")
    added = pubsub.topic(CHANGE_TOPICS["Lead"]).schema_id
    assert added != before
    assert "PubSub_Score__c" in schema_field_names(
        pubsub.stub.GetSchema(pb.SchemaRequest(schema_id=added), metadata=pubsub.metadata).schema_json
    )
    emulator.hide_field("Lead", "PubSub_Score__c")
    try:
        hidden = pubsub.topic(CHANGE_TOPICS["Lead"]).schema_id
        schema_json = pubsub.stub.GetSchema(pb.SchemaRequest(schema_id=hidden), metadata=pubsub.metadata)
        assert "PubSub_Score__c" not in schema_field_names(schema_json.schema_json)
    finally:
        emulator.hide_field("Lead", "PubSub_Score__c", hidden=False)
    # An event written with the old schema can still be decoded: old ids stay served.
    assert (
        pubsub.stub.GetSchema(pb.SchemaRequest(schema_id=before), metadata=pubsub.metadata).schema_id
        == before
    )


def test_events_carry_the_new_schema_id_after_a_field_is_added(pubsub, emulator):
    subscription = pubsub.subscribe(CHANGE_TOPICS["Contact"], 10)
    try:
        contact = emulator.create("Contact", {"LastName": "Before"})[0]
        first = subscription.events(1)[0]
        emulator.add_field("Contact", "PubSub_Tier__c", "string", label="Tier")
        emulator.update("Contact", {"Id": contact, "PubSub_Tier__c": "Gold"})
        second = subscription.events(1)[0]
        assert second.event.schema_id != first.event.schema_id
        assert pubsub.decode(second)["PubSub_Tier__c"] == "Gold"
        assert set(pubsub.changed_names(second)) == {"PubSub_Tier__c", "LastModifiedDate"}
    finally:
        subscription.close()


def test_metadata_is_checked_against_the_sessions(pubsub, emulator_process, emulator):
    token = login(emulator)
    org_id = token["id"].split("/")[-2]
    wrong = {
        "no token": [("instanceurl", token["instance_url"]), ("tenantid", org_id)],
        "unknown token": [
            ("accesstoken", "00D!unknown"),
            ("instanceurl", token["instance_url"]),
            ("tenantid", org_id),
        ],
        "other tenant": [
            ("accesstoken", token["access_token"]),
            ("instanceurl", token["instance_url"]),
            ("tenantid", "00D000000000001AAA"),
        ],
    }
    for case, metadata in wrong.items():
        client = Client(emulator_process, metadata, emulator)
        try:
            with pytest.raises(grpc.RpcError) as error:
                client.topic(OPPORTUNITIES)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, case
            assert trailer(error.value, "error-code"), case
            assert trailer(error.value, "rpc-id"), case
            failed = client.subscribe(OPPORTUNITIES, 1).error()
            assert failed.code() == grpc.StatusCode.UNAUTHENTICATED, case
            assert trailer(failed, "error-code") and trailer(failed, "rpc-id"), case
        finally:
            client.close()


def test_an_unknown_topic_or_schema_is_not_found(pubsub):
    for call in (
        lambda: pubsub.topic("/data/NoSuchObjectChangeEvent"),
        lambda: pubsub.stub.GetSchema(pb.SchemaRequest(schema_id="no-such-schema"), metadata=pubsub.metadata),
    ):
        with pytest.raises(grpc.RpcError) as error:
            call()
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert trailer(error.value, "error-code") and trailer(error.value, "rpc-id")
    failed = pubsub.subscribe("/data/NoSuchObjectChangeEvent", 1).error()
    assert failed.code() == grpc.StatusCode.NOT_FOUND


def test_rest_create_update_delete_publish_decodable_events(pubsub, sf):
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        created = sf.Opportunity.create(
            {"Name": "REST deal", "StageName": "Prospecting", "CloseDate": "2027-01-31"}
        )
        event = subscription.events(1)[0]
        payload = pubsub.decode(event)
        header = payload["ChangeEventHeader"]
        assert header["entityName"] == "Opportunity"
        assert header["changeType"] == "CREATE"
        assert header["recordIds"] == [created["id"]]
        assert header["changeOrigin"].startswith("com/salesforce/api/rest/59.0")
        assert header["commitUser"].startswith("005")
        assert header["transactionKey"] and header["sequenceNumber"] == 1
        assert abs(header["commitTimestamp"] / 1000 - time.time()) < 3600  # epoch milliseconds
        assert payload["Name"] == "REST deal" and payload["StageName"] == "Prospecting"
        assert "SystemModstamp" not in payload and "IsDeleted" not in payload

        sf.Opportunity.update(created["id"], {"Amount": 1200, "Description": "first"})
        sf.Opportunity.update(created["id"], {"Description": None})
        updated, nulled = subscription.events(2)
        assert decoded_header(pubsub, updated)["changeType"] == "UPDATE"
        assert set(pubsub.changed_names(updated)) == {"Amount", "Description", "LastModifiedDate"}
        assert pubsub.decode(updated)["Amount"] == 1200.0
        assert pubsub.decode(updated)["Name"] is None  # an update carries only its changed fields
        assert pubsub.changed_names(nulled, "nulledFields") == ["Description"]
        assert (
            decoded_header(pubsub, updated)["commitNumber"] < decoded_header(pubsub, nulled)["commitNumber"]
        )

        sf.Opportunity.delete(created["id"])
        deleted = subscription.events(1)[0]
        assert decoded_header(pubsub, deleted)["changeType"] == "DELETE"
        assert decoded_header(pubsub, deleted)["recordIds"] == [created["id"]]
    finally:
        subscription.close()


def test_a_delete_cascades_to_roles_and_undelete_brings_them_back(pubsub, emulator):
    opportunity = new_opportunity(emulator)
    contact = emulator.create("Contact", {"LastName": "Cascade"})[0]
    roles = emulator.create(
        "OpportunityContactRole",
        {"OpportunityId": opportunity, "ContactId": contact, "Role": "Decision Maker"},
        {"OpportunityId": opportunity, "ContactId": contact, "Role": "Evaluator"},
    )
    subscription = pubsub.subscribe("/data/ChangeEvents", 20)
    try:
        emulator.delete("Opportunity", opportunity)
        opp_delete, role_delete = (decoded_header(pubsub, e) for e in subscription.events(2))
        assert (opp_delete["entityName"], opp_delete["changeType"]) == ("Opportunity", "DELETE")
        assert (role_delete["entityName"], role_delete["changeType"]) == ("OpportunityContactRole", "DELETE")
        # Both roles were deleted the same way in one transaction: one event lists both (§5).
        assert sorted(role_delete["recordIds"]) == sorted(roles)
        assert opp_delete["transactionKey"] == role_delete["transactionKey"]
        assert (opp_delete["sequenceNumber"], role_delete["sequenceNumber"]) == (1, 2)

        emulator.undelete("Opportunity", opportunity)
        undeleted = [decoded_header(pubsub, e) for e in subscription.events(3)]
        assert [(h["entityName"], h["changeType"]) for h in undeleted] == [
            ("Opportunity", "UNDELETE"),
            ("OpportunityContactRole", "UNDELETE"),
            ("OpportunityContactRole", "UNDELETE"),
        ]
        # An undelete carries every field: the two roles differ (their Role), so two events.
        assert sorted(h["recordIds"][0] for h in undeleted[1:]) == sorted(roles)
    finally:
        subscription.close()


def test_composite_all_or_none_is_one_transaction_and_a_rollback_publishes_nothing(pubsub, emulator, sf):
    first, second = new_opportunity(emulator, "Merged A"), new_opportunity(emulator, "Merged B")
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    base = f"{sf.base_url}sobjects/Opportunity"
    session = https_session(emulator.ca_file)
    headers = {"Authorization": f"Bearer {sf.session_id}"}
    try:
        failing = {
            "allOrNone": True,
            "compositeRequest": [
                {"method": "PATCH", "url": f"{base}/{first}", "referenceId": "a", "body": {"Amount": 1}},
                {
                    "method": "PATCH",
                    "url": f"{base}/006000000000000AAA",
                    "referenceId": "b",
                    "body": {"Amount": 1},
                },
            ],
        }
        response = session.post(f"{sf.base_url}composite", json=failing, headers=headers, timeout=60)
        assert response.status_code == 200
        same = {
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "PATCH",
                    "url": f"{base}/{first}",
                    "referenceId": "a",
                    "body": {"StageName": "Qualification"},
                },
                {
                    "method": "PATCH",
                    "url": f"{base}/{second}",
                    "referenceId": "b",
                    "body": {"StageName": "Qualification"},
                },
            ],
        }
        response = session.post(f"{sf.base_url}composite", json=same, headers=headers, timeout=60)
        assert all(sub["httpStatusCode"] == 204 for sub in response.json()["compositeResponse"])
        # The rolled-back request left nothing; the second merged both records into one event.
        event = subscription.events(1)[0]
        header = decoded_header(pubsub, event)
        assert header["changeType"] == "UPDATE"
        assert sorted(header["recordIds"]) == sorted([first, second])
        assert "StageName" in pubsub.changed_names(event)
        assert header["changeOrigin"].startswith("com/salesforce/api/rest/")
    finally:
        subscription.close()


def test_lead_conversion_publishes_for_the_selected_objects_in_one_transaction(pubsub, emulator):
    lead = emulator.create("Lead", {"LastName": "Convert", "Company": "Convert Co"})[0]
    subscription = pubsub.subscribe("/data/ChangeEvents", 20)
    try:
        converted = emulator.convert_lead(lead)
        headers = [decoded_header(pubsub, e) for e in subscription.events(4)]
        assert [(h["entityName"], h["changeType"]) for h in headers] == [
            ("Contact", "CREATE"),
            ("Opportunity", "CREATE"),
            ("OpportunityContactRole", "CREATE"),
            ("Lead", "UPDATE"),
        ]  # no Account: it is not selected for Change Data Capture
        assert len({h["transactionKey"] for h in headers}) == 1
        assert headers[0]["recordIds"] == [converted["contactId"]]
        assert headers[3]["recordIds"] == [lead]

        emulator.cdc_select("Account")
        second = emulator.create("Lead", {"LastName": "Convert", "Company": "Second Co"})[0]
        emulator.convert_lead(second, create_opportunity=False)
        headers = [decoded_header(pubsub, e) for e in subscription.events(4)]
        assert [(h["entityName"], h["changeType"]) for h in headers] == [
            ("Lead", "CREATE"),
            ("Account", "CREATE"),
            ("Contact", "CREATE"),
            ("Lead", "UPDATE"),
        ]
        assert len({h["transactionKey"] for h in headers[1:]}) == 1
    finally:
        subscription.close()


def test_merge_deletes_the_losers_and_updates_the_master_and_the_moved_roles(pubsub, emulator):
    master, loser = emulator.create("Contact", {"LastName": "Master"}, {"LastName": "Loser"})
    role = emulator.create(
        "OpportunityContactRole", {"OpportunityId": new_opportunity(emulator), "ContactId": loser}
    )[0]
    subscription = pubsub.subscribe("/data/ChangeEvents", 20)
    try:
        emulator.merge("Contact", master, loser)
        headers = [decoded_header(pubsub, e) for e in subscription.events(3)]
        assert {(h["entityName"], h["changeType"], tuple(h["recordIds"])) for h in headers} == {
            ("OpportunityContactRole", "UPDATE", (role,)),
            ("Contact", "DELETE", (loser,)),
            ("Contact", "UPDATE", (master,)),
        }
        assert len({h["transactionKey"] for h in headers}) == 1
    finally:
        subscription.close()


def test_the_sales_team_and_the_control_api_publish_in_commit_order(pubsub, emulator):
    subscription = pubsub.subscribe("/data/ChangeEvents", 50)
    try:
        ids = emulator.create("Contact", {"LastName": "One"}, {"LastName": "Two"})
        emulator.sales_team_act(3)
        emulator.update("Contact", {"Id": ids[0], "Title": "CTO"})
        events = []
        while not any(
            decoded_header(pubsub, e)["changeType"] == "UPDATE"
            and decoded_header(pubsub, e)["recordIds"] == [ids[0]]
            for e in events
        ):
            events += subscription.next_event_response().events
        replays = [e.replay_id for e in events]
        assert replays == sorted(replays) and len(set(replays)) == len(replays)
        commits = [decoded_header(pubsub, e)["commitNumber"] for e in events]
        assert commits == sorted(commits)
        # One control request, one transaction: the two contacts share it, in two events.
        first, second = (decoded_header(pubsub, e) for e in events[:2])
        assert (first["recordIds"], second["recordIds"]) == ([ids[0]], [ids[1]])
        assert first["transactionKey"] == second["transactionKey"]
        assert (first["sequenceNumber"], second["sequenceNumber"]) == (1, 2)
    finally:
        subscription.close()


def test_flow_control_delivers_what_was_asked_and_no_more(pubsub, emulator):
    held = pubsub.subscribe(OPPORTUNITIES, 1)
    watcher = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        ids = [new_opportunity(emulator, f"Flow {n}") for n in range(3)]
        first = held.next_event_response()
        assert len(first.events) == 1 and first.pending_num_requested == 0
        assert decoded_header(pubsub, first.events[0])["recordIds"] == [ids[0]]
        # The other stream, free to take all three, got them: the first one had them too and held back.
        assert [decoded_header(pubsub, e)["recordIds"][0] for e in watcher.events(3)] == ids
        with pytest.raises(queue.Empty):
            held.responses.get_nowait()
        held.request(2)
        rest = held.events(2)
        assert [decoded_header(pubsub, e)["recordIds"][0] for e in rest] == ids[1:]
    finally:
        held.close()
        watcher.close()


def test_more_than_100_requested_counts_as_100(pubsub, emulator):
    subscription = pubsub.subscribe(OPPORTUNITIES, 150)
    try:
        new_opportunity(emulator)
        assert subscription.next_event_response().pending_num_requested == 99
    finally:
        subscription.close()


def test_a_quiet_stream_gets_keepalives_with_the_latest_replay_id(pubsub, emulator):
    emulator.pubsub_keepalive(0.5)
    subscription = pubsub.subscribe(OPPORTUNITIES, 5)
    try:
        emulator.create("Lead", {"LastName": "Elsewhere", "Company": "Other topic"})
        keepalive = subscription.next()
        while keepalive.events:
            keepalive = subscription.next()
        assert keepalive.latest_replay_id and keepalive.pending_num_requested == 5
    finally:
        subscription.close()
    # A client that stored the keepalive's latest_replay_id resumes there: only what came after.
    later = new_opportunity(emulator, "After the keepalive")
    resumed = pubsub.subscribe(
        OPPORTUNITIES, 5, replay_preset=pb.CUSTOM, replay_id=keepalive.latest_replay_id
    )
    try:
        assert decoded_header(pubsub, resumed.events(1)[0])["recordIds"] == [later]
    finally:
        resumed.close()


def test_custom_replay_resumes_after_the_stored_id_and_earliest_replays_all(pubsub, emulator):
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        ids = [new_opportunity(emulator, f"Replay {n}") for n in range(3)]
        events = subscription.events(3)
    finally:
        subscription.close()
    custom = pubsub.subscribe(OPPORTUNITIES, 10, replay_preset=pb.CUSTOM, replay_id=events[0].replay_id)
    try:
        assert [decoded_header(pubsub, e)["recordIds"][0] for e in custom.events(2)] == ids[1:]
    finally:
        custom.close()
    earliest = pubsub.subscribe(OPPORTUNITIES, 100, replay_preset=pb.EARLIEST)
    try:
        seen: list[str] = []
        while ids[-1] not in seen:
            seen += [decoded_header(pubsub, e)["recordIds"][0] for e in earliest.next_event_response().events]
        assert seen.index(ids[0]) < seen.index(ids[1]) < seen.index(ids[2])
    finally:
        earliest.close()


def test_an_unknown_or_expired_replay_id_is_corrupted(pubsub, emulator):
    subscription = pubsub.subscribe(OPPORTUNITIES, 1)
    try:
        new_opportunity(emulator, "Soon expired")
        stored = subscription.events(1)[0].replay_id
    finally:
        subscription.close()
    for replay_id in (b"not a replay id", b"\xff" * 8):
        failed = pubsub.subscribe(OPPORTUNITIES, 1, replay_preset=pb.CUSTOM, replay_id=replay_id).error()
        assert trailer(failed, "error-code") == CORRUPTED
        assert trailer(failed, "rpc-id")
    emulator.cdc_retention(0)  # everything published so far is past the retention window
    new_opportunity(emulator, "After the purge")
    failed = pubsub.subscribe(OPPORTUNITIES, 1, replay_preset=pb.CUSTOM, replay_id=stored).error()
    assert trailer(failed, "error-code") == CORRUPTED


def test_a_custom_channel_carries_its_members(pubsub, emulator):
    emulator.cdc_channel("OppSync__chn", "Opportunity", "OpportunityContactRole")
    subscription = pubsub.subscribe("/data/OppSync__chn", 10)
    try:
        emulator.create("Lead", {"LastName": "Not a member", "Company": "X"})
        opportunity = new_opportunity(emulator, "Channel member")
        header = decoded_header(pubsub, subscription.events(1)[0])
        assert (header["entityName"], header["recordIds"]) == ("Opportunity", [opportunity])
    finally:
        subscription.close()


def test_limits_count_event_deliveries(pubsub, sf, emulator):
    before = sf.limits()["DailyDeliveredPlatformEvents"]
    assert before["Max"] > 0
    first, second = pubsub.subscribe(OPPORTUNITIES, 5), pubsub.subscribe(OPPORTUNITIES, 5)
    try:
        new_opportunity(emulator, "Counted twice")
        first.events(1)
        second.events(1)
    finally:
        first.close()
        second.close()
    after = sf.limits()["DailyDeliveredPlatformEvents"]
    assert after["Max"] == before["Max"]
    assert after["Remaining"] == before["Remaining"] - 2  # each delivery to each subscriber counts


def test_a_purge_and_silent_changes_publish_nothing(pubsub, emulator):
    deleted = new_opportunity(emulator, "Purged")
    emulator.delete("Opportunity", deleted)
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        emulator.purge()  # the recycle bin's rows are hard-deleted: no event (§5.1)
        emulator.set_values_silently("Opportunity", "Description", {deleted: "formula-like"})
        marker = new_opportunity(emulator, "After the purge")
        assert decoded_header(pubsub, subscription.events(1)[0])["recordIds"] == [marker]
    finally:
        subscription.close()

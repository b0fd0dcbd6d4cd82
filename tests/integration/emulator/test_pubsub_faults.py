"""Every Pub/Sub fault the emulator's control API injects, seen by the independent client of
pubsub_client.py as salesforce-api.md §5.1 describes it: lost events, gap and overflow events, a
stalled stream, a reset stream, expired tokens, used-up deliveries, late events, an object not
selected for Change Data Capture."""

from __future__ import annotations

import queue

import grpc
import pytest

from tests.integration.emulator.pubsub_client import (
    CHANGE_TOPICS,
    Client,
    auth_metadata,
    decoded_header,
    trailer,
)

pytestmark = pytest.mark.integration

OPPORTUNITIES = CHANGE_TOPICS["Opportunity"]
LIMIT_EXCEEDED = "sfdc.platform.eventbus.grpc.subscription.limit.exceeded"


def new_opportunity(emulator, name: str = "Fault deal") -> str:
    return emulator.create(
        "Opportunity", {"Name": name, "StageName": "Prospecting", "CloseDate": "2027-03-31"}
    )[0]


def test_dropped_events_are_never_delivered(pubsub, emulator):
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        emulator.pubsub_drop_events(2)
        new_opportunity(emulator, "Lost 1")
        new_opportunity(emulator, "Lost 2")
        kept = new_opportunity(emulator, "Kept")
        assert decoded_header(pubsub, subscription.events(1)[0])["recordIds"] == [kept]
    finally:
        subscription.close()


def test_gap_and_overflow_events_carry_the_header_only(pubsub, emulator):
    opportunity = new_opportunity(emulator)
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        emulator.pubsub_gap("Opportunity", "GAP_UPDATE", [opportunity])
        emulator.pubsub_gap("Opportunity", "GAP_OVERFLOW")
        gap, overflow = subscription.events(2)
        gap_payload = pubsub.decode(gap)
        assert gap_payload["ChangeEventHeader"]["changeType"] == "GAP_UPDATE"
        assert gap_payload["ChangeEventHeader"]["recordIds"] == [opportunity]
        assert all(value is None for name, value in gap_payload.items() if name != "ChangeEventHeader")
        assert decoded_header(pubsub, overflow)["changeType"] == "GAP_OVERFLOW"
        assert decoded_header(pubsub, overflow)["recordIds"] == []
    finally:
        subscription.close()


def test_a_stalled_stream_sends_nothing_until_it_recovers(pubsub, emulator):
    emulator.pubsub_keepalive(0.2)
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        subscription.next()  # keepalives flow
        emulator.pubsub_stall()
        while not subscription.responses.empty():  # what was already on its way
            subscription.responses.get_nowait()
        opportunity = new_opportunity(emulator, "Held by the stall")
        with pytest.raises(queue.Empty):  # many keepalive periods: neither the event nor a keepalive
            subscription.responses.get(timeout=2)
        emulator.pubsub_stall(False)
        assert decoded_header(pubsub, subscription.events(1)[0])["recordIds"] == [opportunity]
    finally:
        subscription.close()


@pytest.mark.parametrize("mode", ["end", "unavailable"])
def test_a_reset_ends_open_streams(pubsub, emulator, mode):
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        emulator.pubsub_reset(mode)
        if mode == "end":
            subscription.ended()
        else:
            error = subscription.error()
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert trailer(error, "error-code") and trailer(error, "rpc-id")
    finally:
        subscription.close()
    # A new stream works.
    again = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        opportunity = new_opportunity(emulator, "After the reset")
        assert decoded_header(pubsub, again.events(1)[0])["recordIds"] == [opportunity]
    finally:
        again.close()


def test_expired_tokens_end_the_stream_with_unauthenticated(pubsub, emulator):
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        emulator.pubsub_expire_tokens()
        error = subscription.error()
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert trailer(error, "error-code") and trailer(error, "rpc-id")
    finally:
        subscription.close()
    with pytest.raises(grpc.RpcError) as refused:
        pubsub.topic(OPPORTUNITIES)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_session_that_runs_out_ends_the_stream(emulator_process, emulator):
    emulator.faults(session_seconds=1)
    client = Client(emulator_process, auth_metadata(emulator), emulator)
    try:
        subscription = client.subscribe(OPPORTUNITIES, 10)
        assert subscription.error().code() == grpc.StatusCode.UNAUTHENTICATED
        subscription.close()
    finally:
        emulator.faults(session_seconds=7200)
        client.close()


def test_used_up_deliveries_fail_the_subscription(pubsub, emulator):
    emulator.pubsub_exhaust_deliveries()
    error = pubsub.subscribe(OPPORTUNITIES, 10).error()
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert trailer(error, "error-code") == LIMIT_EXCEEDED
    assert trailer(error, "rpc-id")


def test_deliveries_running_out_mid_stream_end_it(pubsub, emulator):
    used = emulator.pubsub_deliveries()["used"]
    emulator.pubsub_deliveries(maximum=used + 1)
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        first = new_opportunity(emulator, "The last one allowed")
        new_opportunity(emulator, "Over the allocation")
        assert decoded_header(pubsub, subscription.next_event_response().events[0])["recordIds"] == [first]
        error = subscription.error()
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert trailer(error, "error-code") == LIMIT_EXCEEDED
    finally:
        subscription.close()
        emulator.pubsub_deliveries(maximum=50_000)


def test_delayed_events_still_arrive_in_order(pubsub, emulator):
    emulator.pubsub_delay(300)
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        ids = [new_opportunity(emulator, f"Late {n}") for n in range(2)]
        assert [decoded_header(pubsub, e)["recordIds"][0] for e in subscription.events(2)] == ids
    finally:
        subscription.close()


def test_an_object_not_selected_for_change_data_capture(pubsub, emulator):
    emulator.cdc_select("Lead", False)
    error = pubsub.subscribe(CHANGE_TOPICS["Lead"], 10).error()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not selected for Change Data Capture" in error.details()
    assert trailer(error, "error-code") and trailer(error, "rpc-id")
    assert not pubsub.topic(CHANGE_TOPICS["Lead"]).can_subscribe
    # Its changes publish nothing, not even on /data/ChangeEvents.
    subscription = pubsub.subscribe("/data/ChangeEvents", 10)
    try:
        emulator.create("Lead", {"LastName": "Unseen", "Company": "Not selected"})
        contact = emulator.create("Contact", {"LastName": "Seen"})[0]
        header = decoded_header(pubsub, subscription.events(1)[0])
        assert (header["entityName"], header["recordIds"]) == ("Contact", [contact])
    finally:
        subscription.close()


def test_clear_faults_clears_the_pubsub_faults(pubsub, emulator):
    emulator.pubsub_stall()
    emulator.pubsub_drop_events(5)
    emulator.clear_faults()
    subscription = pubsub.subscribe(OPPORTUNITIES, 10)
    try:
        opportunity = new_opportunity(emulator, "Nothing in the way")
        assert decoded_header(pubsub, subscription.events(1)[0])["recordIds"] == [opportunity]
    finally:
        subscription.close()

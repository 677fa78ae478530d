"""response.create sequencing, one rule at a time."""

from __future__ import annotations

from typing import Any

from voicewire_openai_ws.protocol.sequencer import EVENT_ID_PREFIX, ResponseCreateSequencer


def create(n: int, **extra: Any) -> dict[str, Any]:
    return {"type": "response.create", "event_id": f"{EVENT_ID_PREFIX}{n}", **extra}


def control(seq: ResponseCreateSequencer) -> str:
    # A call, so that the type checker does not carry one reading over to the next.
    return seq.control


def active() -> ResponseCreateSequencer:
    seq = ResponseCreateSequencer()
    seq.on_response_created()
    return seq


def test_request_goes_at_once_when_free() -> None:
    seq = ResponseCreateSequencer()
    assert seq.request() == [create(1)]
    assert seq.control == "create_requested"
    assert seq.in_flight_event_id == f"{EVENT_ID_PREFIX}1"


def test_never_a_second_create_while_one_awaits_acknowledgement() -> None:
    seq = ResponseCreateSequencer()
    seq.request()
    assert seq.request() == []
    assert seq.pending == 1


def test_never_a_create_while_a_response_is_active() -> None:
    seq = active()
    assert seq.request() == []
    assert seq.request({"type": "response.create", "response": {"instructions": "x"}}) == []
    assert seq.pending == 2


def test_response_created_acknowledges_and_done_releases_the_next() -> None:
    seq = ResponseCreateSequencer()
    seq.request()
    seq.request()
    assert seq.on_response_created() == []
    assert seq.response_active
    assert seq.control == "free"
    assert seq.in_flight_event_id is None
    assert seq.on_response_done() == [create(2)]
    assert not seq.response_active


def test_automatic_requests_coalesce() -> None:
    seq = active()
    for _ in range(3):
        seq.request()
    assert seq.on_response_done() == [create(1)]
    assert seq.pending == 0
    seq.on_response_created()
    assert seq.on_response_done() == []


def test_coalescing_stops_at_the_next_manual_request() -> None:
    seq = active()
    seq.request()
    seq.request()
    manual = {"type": "response.create", "response": {"instructions": "m"}}
    seq.request(manual)
    seq.request()
    assert seq.on_response_done() == [create(1)]  # covers the two automatic ones
    assert seq.pending == 2
    seq.on_response_created()
    assert seq.on_response_done() == [create(2, response={"instructions": "m"})]
    seq.on_response_created()
    assert seq.on_response_done() == [create(3)]


def test_manual_requests_are_never_merged() -> None:
    seq = active()
    seq.request({"type": "response.create", "response": {"instructions": "a"}})
    seq.request({"type": "response.create", "response": {"instructions": "b"}})
    assert seq.on_response_done() == [create(1, response={"instructions": "a"})]
    seq.on_response_created()
    assert seq.on_response_done() == [create(2, response={"instructions": "b"})]


def test_requests_made_after_dispatch_are_not_covered() -> None:
    seq = ResponseCreateSequencer()
    assert seq.request() == [create(1)]
    seq.request()
    seq.on_response_created()
    assert seq.on_response_done() == [create(2)]


def test_caller_event_id_is_kept_and_others_stamped() -> None:
    seq = ResponseCreateSequencer()
    assert seq.request({"type": "response.create", "event_id": "mine"}) == [
        {"type": "response.create", "event_id": "mine"}
    ]
    seq.on_response_created()
    seq.request({"type": "response.create", "event_id": None})
    assert seq.on_response_done() == [create(2)]


def test_matching_error_by_event_id_restores_the_coalesced_requests_once() -> None:
    seq = active()
    seq.request()
    seq.request()
    [first] = seq.on_response_done()
    retry = seq.on_error({"code": "x", "message": "y", "event_id": first["event_id"]})
    assert retry == [create(2)]  # one create for both restored requests
    assert seq.on_error({"event_id": retry[0]["event_id"]}) == []  # second failure: dropped
    assert seq.pending == 0
    assert seq.control == "free"


def test_non_matching_error_changes_nothing() -> None:
    seq = ResponseCreateSequencer()
    seq.request()
    assert seq.on_error({"event_id": "someone_else", "code": "response_create_failed"}) == []
    assert seq.control == "create_requested"
    assert seq.on_error(None) == []
    assert seq.on_error({"code": "unknown_parameter", "message": "Unknown parameter"}) == []
    assert seq.control == "create_requested"


def test_error_without_event_id_matches_by_code_or_message() -> None:
    for error in (
        {"code": "invalid_response_create_params", "message": "?"},
        {"code": None, "message": "Bad response.create payload"},
    ):
        seq = ResponseCreateSequencer()
        seq.request()
        assert seq.on_error(error) == [create(2)]


def test_error_releases_a_manual_request_without_restoring_it() -> None:
    seq = ResponseCreateSequencer()
    [sent] = seq.request({"type": "response.create", "response": {"bad": 1}})
    seq.request()
    assert seq.on_error({"event_id": sent["event_id"]}) == [create(2)]
    seq.on_response_created()
    assert seq.on_response_done() == []


def test_error_while_a_response_is_active_waits_for_done() -> None:
    seq = ResponseCreateSequencer()
    [sent] = seq.request()
    seq.on_response_created()  # e.g. a server-VAD response acknowledged it
    seq.request()
    assert seq.on_error({"event_id": sent["event_id"]}) == []


def test_cancel_tracking() -> None:
    seq = ResponseCreateSequencer()
    assert not seq.should_cancel()
    seq.on_cancel_sent()
    assert control(seq) == "free"  # nothing active: nothing to wait for
    seq.on_response_created()
    assert seq.should_cancel()
    seq.on_cancel_sent()
    assert control(seq) == "cancel_requested"
    assert not seq.should_cancel()
    assert seq.request() == []
    assert seq.on_response_done() == [create(1)]


def test_connection_lost_drops_everything() -> None:
    seq = ResponseCreateSequencer()
    seq.request()
    seq.request()
    seq.on_response_created()
    seq.request({"type": "response.create"})
    seq.connection_lost()
    assert seq.pending == 0
    assert not seq.response_active
    assert seq.control == "free"
    assert seq.in_flight_event_id is None
    assert seq.on_response_done() == []
    assert seq.request() == [create(2)]  # event ids keep increasing across connections

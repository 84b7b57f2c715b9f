"""What a webhook request gets (`webhook.decide`), including fuzzed bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.connectors.settings import ConnectSettings, load
from stream_app.connectors.webhook import decide
from tests.unit.connectors.fixtures import fixture

OPEN = ConnectSettings()
SIGNED = ConnectSettings(secrets={"zendesk": "zs", "intercom": "is"})


def test_mapped_unmappable_ignored_and_invalid() -> None:
    body = json.dumps(fixture("zendesk")["ticket_life"][0]).encode()
    accepted = decide("zendesk", {}, body, OPEN)
    assert (accepted.status, accepted.outcome, len(accepted.records)) == (200, "accepted", 1)
    note = decide("zendesk", {}, json.dumps(fixture("zendesk")["ticket_life"][3]).encode(), OPEN)
    assert (note.status, note.outcome, note.records, note.deadletter) == (200, "ignored", [], False)
    wrong = decide("intercom", {}, body, OPEN)  # a Zendesk body on the Intercom route
    assert (wrong.status, wrong.outcome, wrong.records, wrong.deadletter) == (422, "unmappable", [], True)
    junk = decide("amazon_connect", {}, b"\xff{", OPEN)
    assert (junk.status, junk.records, junk.deadletter) == (400, [], False)


def test_a_secret_refuses_unsigned_and_accepts_signed() -> None:
    body = json.dumps(fixture("zendesk")["ticket_life"][0]).encode()
    assert decide("zendesk", {}, body, SIGNED).status == 401
    stamp = "2026-11-30T09:00:00Z"
    signature = base64.b64encode(hmac.new(b"zs", stamp.encode() + body, hashlib.sha256).digest()).decode()
    headers = {"X-Zendesk-Webhook-Signature": signature, "X-Zendesk-Webhook-Signature-Timestamp": stamp}
    assert decide("zendesk", headers, body, SIGNED).status == 200
    intercom = json.dumps(fixture("intercom")["chat_bot_then_agent"][0]).encode()
    assert decide("intercom", {"X-Hub-Signature": "sha1=00"}, intercom, SIGNED).status == 401
    good = "sha1=" + hmac.new(b"is", intercom, hashlib.sha1).hexdigest()
    assert decide("intercom", {"X-Hub-Signature": good}, intercom, SIGNED).status == 200


def test_secrets_are_not_shown() -> None:
    loaded = load({"STREAM_APP_ZENDESK_SECRET": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(loaded)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(["zendesk", "intercom", "amazon_connect"]), body=st.binary(max_size=300))
def test_fuzzed_bytes_get_a_4xx_and_produce_nothing(source: str, body: bytes) -> None:
    decision = decide(source, {}, body, OPEN)
    assert 400 <= decision.status < 500 or decision.outcome == "ignored"
    assert decision.records == []


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(["zendesk", "intercom", "amazon_connect"]), payload=json_values)
def test_fuzzed_json_is_never_mapped_by_accident(source: str, payload: object) -> None:
    decision = decide(source, {}, json.dumps(payload).encode(), OPEN)
    assert decision.records == []
    assert decision.status in (200, 422)
    assert decision.deadletter == (decision.status == 422)


def mutations() -> st.SearchStrategy[tuple[str, dict[str, object], list[str], object]]:
    payloads = (
        [("zendesk", p) for p in fixture("zendesk")["ticket_life"] + fixture("zendesk")["csat"]]
        + [("intercom", p) for p in fixture("intercom")["chat_bot_then_agent"]]
        + [("amazon_connect", p) for p in fixture("amazon_connect")["contact_events"]]
    )
    return st.tuples(
        st.sampled_from(payloads).map(lambda sp: sp[0]),
        st.sampled_from(payloads).map(lambda sp: sp[1]),
        st.lists(st.text(max_size=12), min_size=1, max_size=3),
        json_values,
    )


@settings(max_examples=400, deadline=None)
@given(case=mutations())
def test_fuzzed_real_payloads_map_to_valid_events_or_a_clear_refusal(
    case: tuple[str, dict[str, object], list[str], object],
) -> None:
    """A real payload with one field replaced by anything: valid §3 events, ignored, or 422."""
    from tests.unit.connectors.fixtures import valid_events

    source, payload, path, value = case
    mutated = json.loads(json.dumps(payload))
    node = mutated
    for name in path[:-1]:
        child = node.get(name) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            break
        node = child
    if isinstance(node, dict):
        node[path[-1]] = value
    decision = decide(source, {}, json.dumps(mutated).encode(), OPEN)
    assert decision.status in (200, 422)
    valid_events(decision.records)


def test_amazon_connect_can_require_the_api_key_of_an_eventbridge_connection() -> None:
    body = json.dumps(fixture("amazon_connect")["contact_events"][1]).encode()
    keyed = ConnectSettings(secrets={"amazon_connect": "k3y"})
    assert decide("amazon_connect", {}, body, keyed).status == 401
    assert decide("amazon_connect", {"X-Api-Key": "other"}, body, keyed).status == 401
    assert decide("amazon_connect", {"X-Api-Key": "k3y"}, body, keyed).status == 200
    assert load({"STREAM_APP_AMAZON_CONNECT_SECRET": "k3y"}).secrets == {"amazon_connect": "k3y"}

"""The fast paths must accept exactly what jsonschema accepts: fastjsonschema exactly;
the msgspec types never more, and less only in their named corners, which the
intake then hands to the schemas (so its decision is exactly the reference's)."""

import json
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stream_app.core.event_types import fast_valid
from stream_app.core.intake import Rejected, Schemas
from tests.factories import event, survey
from tests.unit.conftest import make_intake

SCHEMAS = Schemas()
NOW = 1_795_000_000_000

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.sampled_from([0, 1, 5, 5.0, 10, 11, -1, 7.5, True, "5", "", "chat", "agent", "bot", "csat", "nps"]),
    st.text(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def templates() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("ticket", event("ticket.created", NOW, ticket_id="t1", priority="high")),
        ("ticket", event("ticket.agent_replied", NOW, ticket_id="t1", agent_id="a")),
        ("ticket", event("ticket.resolved", NOW, ticket_id="t1")),
        ("chat", event("chat.started", NOW, chat_id="c1")),
        ("chat", event("chat.message", NOW, chat_id="c1", sender="agent")),
        ("chat", event("chat.ended", NOW, chat_id="c1", resolved=True)),
        ("survey", survey("csat", 5, NOW, scale=5)),
        ("survey", survey("nps", 9, NOW)),
        ("survey", survey("ces", 6, NOW, scale=7, ticket_id="t1")),
    ]


@settings(max_examples=1500, deadline=None)
@given(
    template=st.sampled_from(templates()),
    changes=st.dictionaries(
        st.sampled_from(
            [
                "event_id",
                "event_type",
                "occurred_at",
                "channel",
                "ticket_id",
                "chat_id",
                "response_id",
                "survey",
                "score",
                "scale",
                "sender",
                "resolved",
                "priority",
                "agent_id",
                "comment",
                "extra",
            ]
        ),
        values,
        max_size=3,
    ),
    drop=st.lists(
        st.sampled_from(["event_id", "occurred_at", "channel", "score", "survey", "ticket_id"]), max_size=2
    ),
)
def test_fast_and_reference_validators_agree(
    template: tuple[str, dict[str, Any]], changes: dict[str, Any], drop: list[str]
) -> None:
    name, document = template
    document = {**document, **changes}
    for key in drop:
        document.pop(key, None)
    reference = SCHEMAS.validators[name].is_valid(document)
    assert SCHEMAS.is_valid(name, document) == reference, document
    try:
        raw = json.dumps(document, allow_nan=False).encode()
    except ValueError:  # infinity: not JSON, no record can hold it
        return
    typed = fast_valid(name, raw)
    if typed:
        assert reference, f"the msgspec types accepted what the schema refuses: {document}"
    elif reference:
        assert stricter_corner(document), f"the msgspec types refused a valid document: {document}"


def stricter_corner(document: dict[str, Any]) -> bool:
    """Where the msgspec types are knowingly stricter than JSON Schema: an integer
    field holding a float with an integral value (5.0) or an integer beyond 64 bits."""
    for key in ("score", "scale"):
        value = document.get(key)
        if isinstance(value, float) and value.is_integer():
            return True
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
            return True
    return False


INTAKE = make_intake()


@settings(max_examples=300, deadline=None)
@given(
    template=st.sampled_from(templates()),
    key=st.sampled_from(["score", "scale"]),
    value=st.one_of(
        st.floats(allow_nan=False, allow_infinity=False).filter(float.is_integer),
        st.integers(min_value=2**64, max_value=2**70),
        st.integers(min_value=-(2**70), max_value=-(2**63) - 1),
    ),
)
def test_the_intake_decides_the_corners_as_the_schemas_do(
    template: tuple[str, dict[str, Any]], key: str, value: Any
) -> None:
    name, document = template
    assume(name == "survey")
    document = {**document, key: value}
    decided = INTAKE.decode(f"cx.{name}s", json.dumps(document).encode(), NOW)
    schema_says = SCHEMAS.validators[name].is_valid(document)
    refused_by_schema = isinstance(decided, Rejected) and decided.reason == "schema"
    assert refused_by_schema == (not schema_says), (document, decided)


def test_valid_templates_are_valid() -> None:
    for name, document in templates():
        assert SCHEMAS.error(name, document) is None, (name, document)
        assert fast_valid(name, json.dumps(document).encode()), (name, document)

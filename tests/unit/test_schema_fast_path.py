"""The fast validator (fastjsonschema) must accept exactly what jsonschema accepts."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.core.intake import Schemas
from tests.factories import event, survey

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


def test_valid_templates_are_valid() -> None:
    for name, document in templates():
        assert SCHEMAS.error(name, document) is None, (name, document)

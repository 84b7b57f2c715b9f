"""Stage 1 marks the partials of a full batch (`PartitionBatch.behind`, sent with
`BEHIND_HEADER`): more input was waiting, so the merge stage may gather longer.
A batch cut by the flush interval (live traffic) is not marked."""

from __future__ import annotations

from itertools import count

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from stream_app import intake_stage
from stream_app.config import load
from stream_app.core.intake import Intake, Schemas
from stream_app.intake_stage import IntakeStage, entity_partition
from stream_app.metrics import Instruments
from tests.factories import encode, event

NOW = 1_800_000_000_000
_offsets = count()


def _created(ticket_id: str) -> ConsumerRecord[bytes, bytes]:
    value = encode(event("ticket.created", NOW - 60_000, "email", ticket_id=ticket_id))
    return ConsumerRecord(
        "cx.tickets", 0, next(_offsets), NOW, 0, ticket_id.encode(), value, None, 0, len(value), []
    )


def _fold(stage: IntakeStage, tickets: list[str]) -> bool:
    folded = stage._fold({TopicPartition("cx.tickets", 0): [_created(t) for t in tickets]}, NOW, sweep=False)
    assert folded is not None and folded.part(0).partials, "the batch sends partials"
    return folded.part(0).behind


def test_a_full_batch_marks_its_partials_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load({"STREAM_APP_STORE": "memory://"})
    intake = Intake(Schemas(), frozenset(settings.channels), settings.timeline(), settings.lifecycle_rules())
    stage = IntakeStage(settings, intake, Instruments(lambda: []), lambda *_: None)
    home = (f"t{i}" for i in count() if entity_partition(f"t{i}", settings.partitions) == 0)
    monkeypatch.setattr(intake_stage, "INTAKE_BATCH", 3)
    assert _fold(stage, [next(home) for _ in range(3)]), "a full batch: more input is waiting"
    assert not _fold(stage, [next(home) for _ in range(2)]), "cut by the flush interval: live"

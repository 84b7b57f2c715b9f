"""The intake stage relabels the stored contacts of a restored partition in chunks
(`IntakeStage._relabel`): a changed STREAM_APP_QUEUES moves every contact once, at
most RELABEL_CHUNK per batch, with the channel's own figures unchanged."""

from __future__ import annotations

import pytest

from stream_app import intake_stage
from stream_app.config import load
from stream_app.core.intake import Accepted, Intake, Schemas
from stream_app.core.queues import Queues
from stream_app.core.scoreboard import Partials, Scoreboard
from stream_app.core.store import Batch
from stream_app.intake_stage import IntakeStage
from stream_app.metrics import Instruments
from tests.factories import encode, event

NOW = 1_800_000_000_000


def test_a_changed_list_moves_every_stored_contact_once_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load({"STREAM_APP_STORE": "memory://", "STREAM_APP_QUEUES": "billing"})
    timeline = settings.timeline()

    def intake(queues: Queues) -> Intake:
        channels = frozenset(settings.channels)
        return Intake(Schemas(), channels, timeline, settings.lifecycle_rules(), queues=queues)

    stage = IntakeStage(settings, intake(settings.queue_set), Instruments(lambda: []), lambda *_: None)
    counted = intake(Queues(frozenset({"billing", "tech"})))  # the list before the restart
    board = Scoreboard(timeline, NOW)
    batch, partials = Batch(stage.stores["ticket"]), Partials(timeline)
    for i, queue in enumerate(["tech"] * 5 + ["billing"] * 2):
        raw = encode(event("ticket.created", NOW - 60_000, "email", ticket_id=f"t{i}", queue=queue))
        decoded = counted.read("cx.tickets", raw, NOW)
        outcome = counted.apply("cx.tickets", decoded, batch.view(0), NOW)  # type: ignore[arg-type]
        assert isinstance(outcome, Accepted)
        partials.add(outcome.delta, outcome.queue)
    batch.commit(batch.changes())
    for series, partial in partials.drain().items():
        board.apply(series, partial)

    monkeypatch.setattr(intake_stage, "RELABEL_CHUNK", 3)
    stage.relabel_due = {("ticket", 0): stage.stores["ticket"].keys(0)}
    folds = 0
    while stage.relabel_due:
        folded = stage._fold({}, NOW, sweep=False)
        folds += 1
        if folded is None:  # a chunk with no contact to move (the billing ones)
            continue
        assert len(folded.part(0).changes.get("ticket", [])) <= 3  # states rewritten
        for series, partial in folded.part(0).partials.items():
            board.apply(series, partial)
    board.advance(NOW)

    def tickets(series: str) -> int:
        return board.channel(series).window("24h").get("tickets")

    assert folds == 3  # 7 contacts, 3 per batch
    assert (tickets("queue:tech"), tickets("queue:other"), tickets("queue:billing")) == (0, 5, 2)
    assert tickets("email") == tickets("all") == 7
    assert stage._fold({}, NOW, sweep=False) is None  # nothing left to move

import pytest

from stream_app.core.intake import Intake, Schemas
from stream_app.core.lifecycle import LifecycleRules
from stream_app.core.windows import Timeline, WindowSpec

CHANNELS = frozenset({"phone", "email", "chat", "sms", "social", "video", "portal", "app", "in_person"})
WINDOWS = tuple(WindowSpec.parse(w, 60_000) for w in ("15m", "1h", "24h", "today"))

_SCHEMAS = Schemas()


def make_intake(
    timezone: str = "UTC", extra_channels: frozenset[str] = frozenset(), rules: LifecycleRules | None = None
) -> Intake:
    timeline = Timeline(WINDOWS, timezone=timezone)
    return Intake(_SCHEMAS, CHANNELS | extra_channels, timeline, rules or LifecycleRules())


@pytest.fixture
def intake() -> Intake:
    return make_intake()

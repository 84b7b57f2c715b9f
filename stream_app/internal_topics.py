"""Names of the topics and groups the worker owns (prefixed by STREAM_APP_APP_ID)."""

from __future__ import annotations

#: The merge stage's tables (stream_app/merge_tables.py); each has a compacted
#: changelog `<app_id>-<table>-changelog`, partitioned like the partials topic.
MERGE_TABLES = ("scores", "alert-state")


def table_changelog_topic(app_id: str, table: str) -> str:
    return f"{app_id}-{table}-changelog"


def changelog_topic(app_id: str, kind: str) -> str:
    """Compacted per-entity intake state of one kind, partitioned like its input."""
    return f"{app_id}-intake-{kind}-changelog"


def repartition_topic(app_id: str, kind: str) -> str:
    """Where records not on their entity's partition (no key, another key) are re-keyed to."""
    return f"{app_id}-intake-{kind}-repartition"


def partials_topic(app_id: str) -> str:
    """Per-channel partial aggregates, from the intake to the merge stage."""
    return f"{app_id}-partials"


#: Header of a partial whose intake batch was full (more input was waiting): the
#: intake is working through a backlog, and the merge stage may gather longer.
BEHIND_HEADER = ("x-intake-behind", b"1")


def agents_topic(app_id: str) -> str:
    """Compacted window aggregates of the agent series each worker owns (agent_view.py)."""
    return f"{app_id}-agents"


def intake_group(app_id: str) -> str:
    return f"{app_id}-intake"


def merge_group(app_id: str) -> str:
    return f"{app_id}-merge"


def transactional_id(app_id: str, stage: str, partition: int) -> str:
    """The transactional producer of one partition number of a stage ("intake",
    "merge"): the worker assigned the partition initialises it (zombie fencing)."""
    return f"{app_id}-{stage}-p{partition}"


def probe_topic(app_id: str) -> str:
    """One partition the start-up probe writes two records to (kafka/capabilities.py)."""
    return f"{app_id}-probe"

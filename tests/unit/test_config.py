from dataclasses import replace

import pytest

from stream_app import config
from stream_app.config import ConfigError
from stream_app.kafka.capabilities import KAFKA, BrokerCapabilities
from stream_app.kafka.probe import resolve_guarantee


def test_defaults_match_the_spec() -> None:
    s = config.load({})
    assert s.broker == ("kafka://localhost:9092",)
    assert s.web_port == 6066
    assert s.store == "memory://"
    assert s.timezone == "UTC"
    assert s.channels == ("phone", "email", "chat", "sms", "social", "video", "portal", "app", "in_person")
    assert s.windows == ("15m", "1h", "24h", "today")
    assert s.partitions == 4
    assert s.sla_preset == "it_services"


def test_values_are_parsed() -> None:
    s = config.load(
        {
            "STREAM_APP_BROKER": "k1:9092, kafka://k2:9093",
            "STREAM_APP_TIMEZONE": "Asia/Tokyo",
            "STREAM_APP_WINDOWS": "5m,today",
            "STREAM_APP_SLA_OVERRIDES": "chat.first_response=2m;*/urgent.resolution=4h",
            "STREAM_APP_STORE": "rocksdb://",
        }
    )
    assert s.broker == ("kafka://k1:9092", "kafka://k2:9093")
    assert s.bootstrap == "k1:9092,k2:9093"
    assert [w.name for w in s.reported_timeline().windows] == ["5m", "today"]
    assert {w.name for w in s.timeline().windows} >= {"5m", "today", "1h"}  # + the rules' windows
    targets = s.lifecycle_rules().sla
    assert targets.target_ms("first_response", "chat", "low") == 120_000
    assert targets.target_ms("resolution", "email", "urgent") == 4 * 3_600_000
    assert targets.target_ms("resolution", "email", "normal") == 8 * 3_600_000


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BROKER", "kafka://"),
        ("WEB_PORT", "70000"),
        ("STORE", "postgres://"),
        ("TIMEZONE", "Nowhere/City"),
        ("CHANNELS", "Chat"),
        ("CHANNELS", "all"),
        ("WINDOWS", "90s"),
        ("WINDOWS", "weekly"),
        ("PARTITIONS", "0"),
        ("SLA_PRESET", "platinum"),
        ("SLA_OVERRIDES", "chat.first_reply=5m"),
        ("RULES", "/does/not/exist.yaml"),
        ("BUCKET", "7m"),
        ("GRACE", "ten minutes"),
        ("PROCESSING_GUARANTEE", "twice"),
        ("QUEUES", ","),  # names no queue (queues were silently off)
        ("QUEUES", "Billing,billing"),  # two queues one letter's case apart
        ("QUEUES", "Other"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config.load({f"STREAM_APP_{name}": value})
    message = str(raised.value)
    assert f"STREAM_APP_{name}" in message
    assert "\n" not in message


def test_api_token_is_checked_and_never_echoed() -> None:
    import pytest

    from stream_app.config import ConfigError, load

    assert load({"STREAM_APP_API_TOKEN": "0123456789abcdef"}).api_token == "0123456789abcdef"
    assert "0123456789abcdef" not in repr(load({"STREAM_APP_API_TOKEN": "0123456789abcdef"}))
    with pytest.raises(ConfigError) as error:
        load({"STREAM_APP_API_TOKEN": "short secret"})
    assert "short secret" not in str(error.value)
    assert str(error.value).startswith("STREAM_APP_API_TOKEN=<hidden>")


def test_token_sources_and_comparison() -> None:
    from stream_app.http_auth import COOKIE, allowed, presented_token

    assert presented_token({"Authorization": "Bearer abc"}, {}, {}) == "abc"
    assert presented_token({}, {}, {"token": "q"}) == "q"
    assert presented_token({}, {COOKIE: "c"}, {}) == "c"
    assert presented_token({"Authorization": "Basic abc"}, {}, {}) is None
    assert allowed(None, None)
    assert allowed("secret", "secret")
    assert not allowed("secret", None)
    assert not allowed("secret", "Secret")


def test_sasl_settings_name_what_is_missing_and_hide_the_password() -> None:
    import pytest

    from stream_app.config import ConfigError, load

    base = {"STREAM_APP_SECURITY_PROTOCOL": "sasl_plaintext", "STREAM_APP_SASL_MECHANISM": "scram-sha-512"}
    with pytest.raises(ConfigError, match=r"^STREAM_APP_SASL_USERNAME is required"):
        load(base)
    settings = load({**base, "STREAM_APP_SASL_USERNAME": "cx", "STREAM_APP_SASL_PASSWORD": "pw-123"})
    assert settings.kafka_client_options()["sasl_mechanism"] == "SCRAM-SHA-512"
    assert "pw-123" not in repr(settings)
    with pytest.raises(ConfigError, match=r"^STREAM_APP_SASL_MECHANISM="):
        load({**base, "STREAM_APP_SASL_MECHANISM": "MD5"})
    plain = load(
        {
            **base,
            "STREAM_APP_SASL_MECHANISM": "plain",
            "STREAM_APP_SASL_USERNAME": "u",
            "STREAM_APP_SASL_PASSWORD": "p",
        }
    )
    assert plain.faust_credentials().mechanism.value == "PLAIN"


NO_TRANSACTIONS = BrokerCapabilities(
    transactions=False,
    idempotence=False,
    exact_end_offsets=False,
    short_sessions=True,
    no_transactions_because="InitProducerId: UnknownError",
)


def test_processing_guarantee_auto_follows_what_the_broker_can_do() -> None:
    auto = config.load({})
    assert auto.processing_guarantee == "auto"
    assert auto.guarantee == "exactly_once"  # Apache Kafka, until probed otherwise
    assert replace(auto, capabilities=NO_TRANSACTIONS).guarantee == "at_least_once"
    assert resolve_guarantee("auto", NO_TRANSACTIONS) == "at_least_once"
    assert resolve_guarantee("auto", KAFKA) == "exactly_once"
    chosen = config.load({"STREAM_APP_PROCESSING_GUARANTEE": "AT_LEAST_ONCE"})
    assert replace(chosen, capabilities=KAFKA).guarantee == "at_least_once"


def test_exactly_once_on_a_broker_without_transactions_is_one_line_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        resolve_guarantee("exactly_once", NO_TRANSACTIONS)
    message = str(raised.value)
    assert message.startswith("STREAM_APP_PROCESSING_GUARANTEE=exactly_once needs Kafka transactions")
    assert "UnknownError" in message and "\n" not in message


def test_instance_id_names_the_transactional_producer() -> None:
    assert config.load({"STREAM_APP_INSTANCE_ID": "worker-7"}).instance == "worker-7"
    assert config.load({"STREAM_APP_WEB_PORT": "7001"}).instance.endswith("-7001")
    with pytest.raises(ConfigError, match="STREAM_APP_INSTANCE_ID"):
        config.load({"STREAM_APP_INSTANCE_ID": "two words"})


def test_an_sla_override_for_every_channel_applies_to_every_channel() -> None:
    targets = config.load({"STREAM_APP_SLA_OVERRIDES": "*.first_response=5m"}).lifecycle_rules().sla
    for channel in ("email", "chat", "phone"):
        for priority in ("low", "urgent"):
            assert targets.target_ms("first_response", channel, priority) == 300_000
    assert targets.target_ms("resolution", "email", "low") == 8 * 3_600_000  # untouched
    # more specific overrides still win over the wildcard
    mixed = "*.first_response=5m;email.first_response=1h;*/urgent.first_response=1m"
    targets = config.load({"STREAM_APP_SLA_OVERRIDES": mixed}).lifecycle_rules().sla
    assert targets.target_ms("first_response", "email", "normal") == 3_600_000
    assert targets.target_ms("first_response", "chat", "urgent") == 60_000
    assert targets.target_ms("first_response", "chat", "normal") == 300_000


def test_an_sla_override_for_a_queue_comes_before_the_channel_s() -> None:
    """SPEC §5: targets overridable per channel, queue and priority."""
    items = "email.first_response=3h;queue:billing.first_response=1h;queue:billing/urgent.first_response=10m"
    targets = config.load({"STREAM_APP_SLA_OVERRIDES": items}).lifecycle_rules().sla
    assert targets.target_ms("first_response", "email", "normal", "billing") == 3_600_000
    assert targets.target_ms("first_response", "email", "urgent", "billing") == 600_000
    assert targets.target_ms("first_response", "email", "normal", "tech") == 3 * 3_600_000
    assert targets.target_ms("first_response", "email", "normal") == 3 * 3_600_000  # no queue named
    assert targets.target_ms("resolution", "email", "normal", "billing") == 8 * 3_600_000  # preset
    # any raw queue name (listed in STREAM_APP_QUEUES or not) but the separators
    odd = config.load({"STREAM_APP_SLA_OVERRIDES": "queue:請求-eu.resolution=2h"}).lifecycle_rules().sla
    assert odd.target_ms("resolution", "chat", "low", "請求-eu") == 2 * 3_600_000
    for bad in ("queue:.first_response=1h", "queue:a.b.first_response=1h", "queue:*.first_response=1h"):
        with pytest.raises(ConfigError, match=r"^STREAM_APP_SLA_OVERRIDES"):
            config.load({"STREAM_APP_SLA_OVERRIDES": bad})


@pytest.mark.parametrize("item", ["chta.first_response=5m", "chta/urgent.resolution=1h"])
def test_an_sla_override_for_an_unknown_channel_is_one_line_naming_it(item: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config.load({"STREAM_APP_SLA_OVERRIDES": item})
    message = str(raised.value)
    assert message.startswith("STREAM_APP_SLA_OVERRIDES") and "'chta'" in message and "\n" not in message


def test_chats_have_their_own_first_response_target_in_seconds() -> None:
    targets = config.load({}).lifecycle_rules().sla
    assert targets.target_ms("chat_first_response", "chat", "normal") == 60_000
    assert targets.target_ms("first_response", "chat", "normal") == 2 * 3_600_000  # tickets
    tuned = config.load({"STREAM_APP_SLA_OVERRIDES": "*.chat_first_response=30s"}).lifecycle_rules().sla
    assert tuned.target_ms("chat_first_response", "video", "normal") == 30_000

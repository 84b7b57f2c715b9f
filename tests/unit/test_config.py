import pytest

from stream_app import config
from stream_app.config import ConfigError


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
        ("BROKER_KIND", "redpanda"),
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


def test_processing_guarantee_follows_the_broker_and_refuses_what_it_lacks() -> None:
    assert config.load({}).guarantee == "exactly_once"
    assert config.load({"STREAM_APP_BROKER_KIND": "tansu"}).guarantee == "at_least_once"
    chosen = config.load({"STREAM_APP_PROCESSING_GUARANTEE": "AT_LEAST_ONCE"})
    assert chosen.guarantee == "at_least_once"
    with pytest.raises(
        ConfigError, match=r"^STREAM_APP_PROCESSING_GUARANTEE=exactly_once needs Kafka transactions"
    ):
        config.load({"STREAM_APP_BROKER_KIND": "tansu", "STREAM_APP_PROCESSING_GUARANTEE": "exactly_once"})
    with pytest.raises(ConfigError, match="STREAM_APP_PROCESSING_GUARANTEE"):
        config.load({"STREAM_APP_PROCESSING_GUARANTEE": "twice"})


def test_instance_id_names_the_transactional_producer() -> None:
    assert config.load({"STREAM_APP_INSTANCE_ID": "worker-7"}).instance == "worker-7"
    assert config.load({"STREAM_APP_WEB_PORT": "7001"}).instance.endswith("-7001")
    with pytest.raises(ConfigError, match="STREAM_APP_INSTANCE_ID"):
        config.load({"STREAM_APP_INSTANCE_ID": "two words"})

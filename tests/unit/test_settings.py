from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.settings import Settings, WriteKey, load_settings, parse_write_keys


def test_defaults_without_any_source(tmp_path: Path) -> None:
    s = load_settings({}, env={}, cwd=tmp_path)
    assert s == Settings()
    assert s.collector_port == 8000
    assert s.kafka_bootstrap is None
    assert set(s.sources.values()) == {"default"}


def test_precedence_flag_over_env_over_toml(tmp_path: Path) -> None:
    (tmp_path / "autocap.toml").write_text(
        'collector_port = 8100\npartitions = 8\ntopic_prefix = "fromtoml"\n'
    )
    env = {"AUTOCAP_COLLECTOR_PORT": "8200", "AUTOCAP_PARTITIONS": "6"}
    s = load_settings({"collector_port": "8300"}, env=env, cwd=tmp_path)
    assert s.collector_port == 8300 and s.sources["collector_port"] == "flag"
    assert s.partitions == 6 and s.sources["partitions"] == "env"
    assert s.topic_prefix == "fromtoml" and s.sources["topic_prefix"].endswith("autocap.toml")


def test_config_path_from_env(tmp_path: Path) -> None:
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('kafka_bootstrap = "k1:9092,k2:9092"\n')
    s = load_settings({}, env={"AUTOCAP_CONFIG": str(cfg)}, cwd=tmp_path)
    assert s.kafka_bootstrap == "k1:9092,k2:9092"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTOCAP_COLLECTOR_PORT": "http"}, "AUTOCAP_COLLECTOR_PORT: expected an integer"),
        ({"AUTOCAP_COLLECTOR_PORT": "70000"}, "must be between 1 and 65535"),
        ({"AUTOCAP_KAFKA_IDEMPOTENCE": "maybe"}, "expected true or false"),
        ({"AUTOCAP_LOG_LEVEL": "loud"}, "expected one of debug"),
        ({"AUTOCAP_TOPIC_PREFIX": "a b"}, "AUTOCAP_TOPIC_PREFIX"),
        ({"AUTOCAP_WRITE_KEYS": "short"}, "8-128 characters"),
        ({"AUTOCAP_SINK_BATCH_MAX_SECONDS": "0"}, "at least 0.05"),
        ({"AUTOCAP_CONFIG": "/nonexistent/autocap.toml"}, "does not exist"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({}, env=env, cwd=tmp_path)


def test_toml_errors_are_clear(tmp_path: Path) -> None:
    (tmp_path / "autocap.toml").write_text("colector_port = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'colector_port'"):
        load_settings({}, env={}, cwd=tmp_path)
    (tmp_path / "autocap.toml").write_text("collector_port = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, env={}, cwd=tmp_path)
    (tmp_path / "autocap.toml").write_text("collector_port = [8000]\n")
    with pytest.raises(ConfigError, match="collector_port: expected an integer"):
        load_settings({}, env={}, cwd=tmp_path)


def test_write_keys_with_origins() -> None:
    keys = parse_write_keys(
        "wk_aaaaaaaa=https://a.example|http://b.example:8080/, wk_bbbbbbbb", "X"
    )
    assert keys == (
        WriteKey("wk_aaaaaaaa", ("https://a.example", "http://b.example:8080")),
        WriteKey("wk_bbbbbbbb"),
    )
    with pytest.raises(ConfigError, match="CORS origin 'javascript:alert"):
        parse_write_keys("wk_aaaaaaaa=javascript:alert(1)", "X")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_write_keys("wk_aaaaaaaa,wk_aaaaaaaa", "X")


def test_to_env_round_trips(tmp_path: Path) -> None:
    original = Settings(
        kafka_bootstrap="h:1",
        data_dir=tmp_path / "d",
        partitions=3,
        kafka_idempotence=False,
        write_keys=(WriteKey("wk_aaaaaaaa", ("https://a.example",)), WriteKey("wk_bbbbbbbb")),
        sink_batch_max_seconds=0.25,
        broker_port=1234,
    )
    rebuilt = load_settings({}, env=original.to_env(), cwd=tmp_path)
    assert rebuilt == original

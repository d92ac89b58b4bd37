import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress import config
from buttress.config import (
    Boolean,
    Choice,
    ConfigError,
    Duration,
    Integer,
    ListOf,
    MapOf,
    Number,
    Problems,
    Size,
    String,
    Table,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("10s", 10),
        ("15m", 900),
        ("1h", 3600),
        ("30d", 2_592_000),
        ("1h30m", 5400),
        ("1.5s", 1.5),
        ("500us", 0.0005),
        ("2w", 1_209_600),
        (3, 3.0),
        (0.1, 0.1),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "10",
        "ten seconds",
        "10 sec",
        "-5s",
        "1h-",
        True,
        None,
        [1],
        float("nan"),
        -1,
        10**400,
        "9" * 400 + "s",
    ],
)
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_parse_duration_property(n, unit):
    factor = {"ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(f"{n}{unit}") == pytest.approx(n * factor)


@pytest.mark.parametrize(
    ("text", "size"),
    [("512MB", 512_000_000), ("64KiB", 65536), ("1GiB", 1 << 30), ("10", 10), (42, 42), ("1.5kb", 1500)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["12 parsecs", "MB", -3, True, 1.5, "-1MB"])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError, match=r"size|negative"):
        parse_size(bad)


SCHEMA = Table(
    fields={
        "timeout": Duration(default=1.0, positive=True),
        "rate": Number(minimum=0, maximum=1, minimum_exclusive=True),
        "attempts": Integer(default=3, minimum=1),
        "jitter": Choice(choices=["none", "full", "equal", "decorrelated"], default="full"),
        "enabled": Boolean(default=True),
        "name": String(required=True),
        "size": Size(default=0),
        "routes": ListOf(item=String(), min_items=1, default=["*"]),
        "children": MapOf(value=Table(fields={"ttl": Duration(default=60.0)})),
        "window": Table(
            fields={"kind": Choice(choices=["count", "time"], default="count")}, shorthand="kind"
        ),
    }
)


def parse(data):
    problems = Problems()
    out = SCHEMA.parse(data, "x", problems)
    return out, [str(p) for p in problems.items]


def test_schema_defaults_and_conversion():
    out, problems = parse(
        {"name": "a", "timeout": "2s", "rate": 0.5, "children": {"ev": {}}, "window": "time"}
    )
    assert problems == []
    assert out["timeout"] == 2.0
    assert out["attempts"] == 3
    assert out["jitter"] == "full"
    assert out["children"] == {"ev": {"ttl": 60.0}}
    assert out["window"] == {"kind": "time"}
    assert out["routes"] == ["*"]


def test_schema_reports_every_problem_with_path_and_value():
    _, problems = parse(
        {
            "timeout": "-2s",
            "rate": 1.5,
            "attempts": 0,
            "jitter": "fulll",
            "enabled": "yes",
            "routes": [],
            "children": {"ev": {"tll": "1m"}},
            "extra": 1,
        }
    )
    assert "x.timeout: a duration cannot be negative (got '-2s')" in problems
    assert "x.rate: out of range: must be in (0, 1] (got 1.5)" in problems
    assert "x.attempts: must be at least 1 (got 0)" in problems
    assert any(p.startswith("x.jitter: must be one of") and 'did you mean "full"' in p for p in problems)
    assert "x.enabled: expected true or false (got 'yes')" in problems
    assert "x.routes: needs at least 1 item(s) (got [])" in problems
    assert any(p.startswith("x.children.ev.tll: unknown key") and 'did you mean "ttl"' in p for p in problems)
    assert any(p.startswith("x.extra: unknown key; allowed:") for p in problems)
    assert "x.name: is required" in problems
    assert len(problems) == 9


def test_loads_malformed_toml():
    with pytest.raises(ConfigError) as info:
        config.loads("[telemetry\nwebhooks = 1", "bad.toml")
    assert "not valid TOML" in str(info.value)
    assert "bad.toml" in str(info.value)


def test_loads_unknown_section_suggests():
    with pytest.raises(ConfigError) as info:
        config.loads("[telemetri]\nwebhooks = []")
    (problem,) = info.value.problems
    assert problem.path == "telemetri"
    assert 'did you mean "telemetry"' in problem.message


def test_loads_telemetry_section_and_defaults():
    cfg = config.loads('[telemetry]\nwebhooks = ["http://127.0.0.1:9/hook"]\nwebhook_timeout = "250ms"')
    section = cfg.section("telemetry")
    assert section == {
        "webhooks": ["http://127.0.0.1:9/hook"],
        "webhook_timeout": 0.25,
        "webhook_attempts": 3,
        "webhook_backoff": 1.0,
    }
    assert config.loads("").section("telemetry")["webhook_attempts"] == 3


def test_pyproject_tool_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname="x"\n[tool.buttress.telemetry]\nwebhook_attempts = 5\n'
    )
    found = config.find_config(tmp_path)
    assert found == tmp_path / "pyproject.toml"
    assert config.load(found).section("telemetry")["webhook_attempts"] == 5


def test_find_config_walks_up_and_env_wins(tmp_path, monkeypatch):
    (tmp_path / "buttress.toml").write_text("")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.delenv("BUTTRESS_CONFIG", raising=False)
    assert config.find_config(deep) == tmp_path / "buttress.toml"
    monkeypatch.setenv("BUTTRESS_CONFIG", str(tmp_path / "other.toml"))
    assert config.find_config(deep) == tmp_path / "other.toml"


def test_load_missing_file_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "nope.toml")


def test_no_file_means_embedded_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BUTTRESS_CONFIG", raising=False)
    assert config.load().sections == {}


def test_use_and_current(tmp_path):
    cfg = config.loads("[telemetry]\nwebhook_attempts = 2")
    previous = config.use(cfg)
    try:
        assert config.current() is cfg
    finally:
        config.use(previous)

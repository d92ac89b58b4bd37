from click.testing import CliRunner

from buttress.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_help_lists_groups_and_exit_codes():
    result = run("--help")
    assert result.exit_code == 0
    assert "config" in result.output
    assert "version" in result.output
    assert "Exit codes" in result.output


def test_version():
    result = run("version")
    assert result.exit_code == 0
    assert result.output.startswith("buttress ")


def test_config_check_three_mistakes(tmp_path):
    bad = tmp_path / "buttress.toml"
    bad.write_text('[telemetry]\nwebhooks = ["ftp://nope"]\nwebhook_timeout = "-5s"\nwebhook_atempts = 3\n')
    result = run("config", "check", str(bad))
    assert result.exit_code == 1
    out = result.output
    assert "3 problem(s)" in out
    assert "telemetry.webhooks[0]: must match" in out
    assert "telemetry.webhook_timeout: a duration cannot be negative (got '-5s')" in out
    assert "telemetry.webhook_atempts: unknown key" in out
    assert 'did you mean "webhook_attempts"' in out


def test_config_check_ok_prints_summary(tmp_path):
    good = tmp_path / "buttress.toml"
    good.write_text('[telemetry]\nwebhooks = ["https://hooks.example/alerts"]\n')
    result = run("config", "check", str(good))
    assert result.exit_code == 0, result.output
    assert "ok" in result.output
    assert "telemetry" in result.output
    assert "webhook_attempts = 3" in result.output


def test_config_check_missing_file(tmp_path):
    result = run("config", "check", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2


def test_config_check_without_file_uses_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BUTTRESS_CONFIG", raising=False)
    result = run("config", "check")
    assert result.exit_code == 0
    assert "embedded defaults" in result.output


def test_unknown_command_exit_2():
    assert run("nope").exit_code == 2

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mlops_assets.cli import main
from mlops_assets.serving.settings import ServeSettings

BASE = {"delta_root": "/lake", "tracking_uri": "sqlite:///m.db", "wal_dir": "/wal"}


def test_defaults_bind_loopback_and_hide_the_token() -> None:
    settings = ServeSettings(**BASE, admin_token="a-very-secret-token-123")
    assert settings.host == "127.0.0.1" and settings.alias == "champion"
    assert "a-very-secret-token-123" not in repr(settings)
    assert settings.describe()["admin_token"] == "set"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"port": 70000}, "port 70000 is outside"),
        ({"canary_fraction": 1.5, "canary_alias": "c"}, "canary_fraction 1.5 is outside"),
        ({"canary_fraction": 0.2}, "needs a canary_alias"),
        ({"canary_alias": "champion"}, "canary_alias equals alias"),
        ({"unexpected_columns": "drop"}, "is not reject|ignore"),
        ({"admin_token": "short"}, "at least 16 characters"),
        ({"max_rows": 0}, "max_rows must be >= 1"),
        ({"poll_interval_s": 0}, "poll_interval_s must be > 0"),
        ({"wal_dir": ""}, "wal_dir is empty"),
        ({"log_mover_nice": 20}, "log_mover_nice 20 is outside 0..19"),
    ],
)
def test_impossible_settings_are_named(change: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ServeSettings(**{**BASE, **change})


def test_cli_refuses_bad_flags_before_starting(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path))  # restored after the test
    result = CliRunner().invoke(main, ["serve", "--canary-fraction", "0.3"])
    assert result.exit_code == 2 and "needs a canary_alias" in result.output
    result = CliRunner().invoke(main, ["serve", "--unexpected-columns", "drop"])
    assert result.exit_code == 2 and "drop" in result.output

"""``mlops simulate`` as a real process against a real ``mlops serve`` process.

The served model takes the credit-card columns; the simulator sends fresh synthetic rows
(drifted after row 200), then replays the held-out tail of the real credit-card file. What
the server logged to Delta is checked against what the simulator says it sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from xgboost import XGBClassifier

from mlops_assets.core import synthetic
from mlops_assets.core.contract import contract_from_frame
from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets_tests.e2e.serving_process import read_table, start_server
from mlops_assets_tests.serving.registry import TestRegistry, fast_model_logging

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
_CLI = "import sys; from mlops_assets.cli import main; main(sys.argv[1:])"
FEATURES = [*synthetic.V_COLUMNS, "Amount"]


def register_credit_card_model(folder: Path) -> TestRegistry:
    """A small XGBoost on synthetic credit-card rows (no Time), alias ``champion``."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    from mlops_assets.core.model_io import log_bundle

    frame = synthetic.generate(2000, seed=3, positive_rate=0.05)
    features = frame[FEATURES]
    model = XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1, tree_method="hist")
    bundle = ModelBundle(model.fit(features, frame["Class"]), 0.5, contract_from_frame(features))
    registry = TestRegistry.create(folder)
    client = registry.client()
    experiment = client.create_experiment("simulate", artifact_location=(folder / "a").as_uri())
    with _use_tracking_uri(registry.tracking_uri), fast_model_logging():
        with mlflow.start_run(experiment_id=experiment):
            uri = log_bundle(bundle, features)
        version = mlflow.register_model(uri, registry.model_name)
    registry.set_alias("champion", int(version.version))
    return registry


def simulate(folder: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", _CLI, "--state-dir", str(folder / "sim"), "simulate"]
    return subprocess.run(
        [*command, "--url", url, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_simulate_cli_against_a_real_server(tmp_path: Path, shared_data: Path) -> None:
    registry = register_credit_card_model(tmp_path / "mlflow")
    server = start_server(tmp_path / "server", registry.tracking_uri, "champion")
    try:
        done = simulate(
            tmp_path,
            server.url,
            *("--source", "synthetic", "--rows", "400", "--rate", "400", "--batch-rows", "20"),
            *("--drift-shift", "V3=3.0", "--drift-after", "200", "--feedback-share", "0.5"),
            *("--feedback-delay", "0.5", "--progress-interval", "0.5"),
            *("--summary-json", str(tmp_path / "synthetic.json")),
        )
        assert done.returncode == 0, done.stderr
        assert "traffic: synthetic traffic, 400 rows, seed 1042; drift" in done.stderr
        assert "traffic 400/400 rows" in done.stderr  # progress lines
        assert "rows: 400 answered of 400 sent" in done.stdout
        first = json.loads((tmp_path / "synthetic.json").read_text())
        assert first["versions"] == {"1": 400} and first["drift_onset_row"] == 200
        assert 150 <= first["feedback_sent"] <= 250 and first["feedback_unsent"] == 0

        real = simulate(
            tmp_path,
            server.url,
            *("--source", "file", "--path", str(shared_data / "creditcard.csv.gz")),
            *("--rows", "200", "--rate", "1000", "--feedback-delay", "0"),
            *("--summary-json", str(tmp_path / "real.json")),
        )
        assert real.returncode == 0, real.stderr
        assert "latest 20% of Time held out" in real.stderr
        second = json.loads((tmp_path / "real.json").read_text())
        assert second["rows_answered"] == 200 and second["feedback_sent"] == 200

        bad = simulate(tmp_path, server.url, "--source", "synthetic", "--drift-shift", "V3")
        assert bad.returncode == 2 and "--drift-shift: item 'V3' is not COLUMN=NUMBER" in bad.stderr
    finally:
        assert server.stop() == 0  # drains the log into Delta

    log = read_table(server.lake, "inference_log")
    feedback = read_table(server.lake, "feedback")
    assert len(log) == 600
    assert len(feedback) == first["feedback_sent"] + second["feedback_sent"]
    assert set(feedback["request_id"]) <= set(log["request_id"])
    prefix = log["batch_id"].str.rsplit("-", n=1).str[0]  # one per simulator run
    synthetic_rows = log[prefix == prefix.value_counts().idxmax()]  # its 400 rows
    assert len(synthetic_rows) == 400
    batch = synthetic_rows["batch_id"].str.rsplit("-", n=1).str[-1].astype(int)
    shifted = synthetic_rows[batch >= 10]["V3"].mean() - synthetic_rows[batch < 10]["V3"].mean()
    assert shifted > 3.0  # the drifted half was served as drifted

"""Two training runs at once while the server appends to the inference log (production profile).

Everything real: the PostgreSQL-backed Dagster instance (``deploy/production/dagster.yaml``)
and MLflow server, two ``dagster asset materialize`` processes started together (ingest,
split, resample, tune, register, decide the champion), and ``mlops serve`` answering
``/predict`` batches throughout, hot-swapping as the champion moves. The lakehouse is one
delta-rs root shared by all three writers (``MLOPS_DELTA_ENGINE=delta-rs``; the Spark engine
has its own end-to-end test). Checked afterwards, from what was stored:

* every Delta commit landed: each table's history is gapless and holds one commit per run
  (plus the seed), and each run's recorded version is its own commit;
* the inference log holds every acknowledged prediction exactly once (ids and count);
* both runs succeeded and no process logged ``database is locked``;
* each run's champion decision is about the version that run registered (the values handed
  between steps are per run, ``mlops_assets/io_manager.py``);
* the champion alias moved at most once per decision, and each decision compared against
  the champion of its turn (the registry lock serialises them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from mlops_assets.cli import prepare_dagster_home
from mlops_assets.constants import CHAMPION_ALIAS, PROMOTIONS_TABLE
from mlops_assets.core.paths import StatePaths
from mlops_assets.processes import scoped_environment
from mlops_assets_tests.e2e.serving_process import start_server
from mlops_assets_tests.e2e.test_production_profile import production_env, small_fraud_csv
from mlops_assets_tests.postgres_fixtures import MlflowServer, PostgresServer

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(480)]

TABLES = ("raw_transactions", "transactions", "training_splits", "resampled_train")
SELECTION = ",".join((*TABLES, "tuned_model", "registered_model_version", "champion_model"))
RUN_CONFIG = {
    "ops": {
        "resampled_train": {"config": {"method": "none"}},
        "tuned_model": {"config": {"max_evals": 1, "nthread": 1}},
        "champion_model": {
            # absolute floors and the latency budget (a loaded CI machine) are not tested here
            "config": {"resamples": 200, "min_kappa": 0.0, "min_pr_auc": 0.0}
            | {"allow_contract_change": True, "max_latency_ms_per_row": 1000.0}
        },
    }
}
FEATURES = [f"V{index}" for index in range(1, 29)] + ["Amount"]
MODEL = "fraud_concurrency"  # its own registered model and Dagster database: the servers are shared


def seed_champion(tracking_uri: str, frame: pd.DataFrame, model: str) -> str:
    """Register a weak champion (version 1: fitted on shuffled labels) for the server to serve.

    Weak on purpose, so that a trained challenger beats it and the champion alias moves while
    traffic flows (the server hot-swaps).
    """
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlops_assets.core import aliases
    from mlops_assets.core.contract import contract_from_frame
    from mlops_assets.core.model_bundle import ModelBundle
    from mlops_assets.core.model_io import log_bundle
    from mlops_assets.core.registry import register_version
    from mlops_assets.core.tracking import TrackingTarget

    target = TrackingTarget(tracking_uri=tracking_uri, experiment_name="seed")
    target.activate()
    features = frame[FEATURES]
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    shuffled = frame["Class"].sample(frac=1.0, random_state=3).to_numpy()
    bundle = ModelBundle(pipeline.fit(features, shuffled), 0.5, contract_from_frame(features))
    with mlflow.start_run() as run:
        uri = log_bundle(bundle, features.head(5))
    version = register_version(target, model, uri, run.info.run_id, {}, {})
    aliases.promote(target.client(), model, version.version)
    return version.version


class Traffic(threading.Thread):
    """Posts /predict batches until stopped; keeps the ids of every acknowledged row."""

    def __init__(self, url: str, rows: list[dict], batch: int = 20) -> None:
        super().__init__(daemon=True)
        self.url, self.rows, self.batch = url, rows, batch
        self.acknowledged: list[str] = []
        self.failures: list[str] = []
        self.versions: set[str] = set()
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            start = 0
            while not self.stopping.is_set():
                rows = self.rows[start : start + self.batch]
                start = (start + self.batch) % (len(self.rows) - self.batch)
                response = client.post("/predict", json=rows)
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
                    time.sleep(0.2)
                    continue
                answers = response.json()["predictions"]
                self.acknowledged += [answer["request_id"] for answer in answers]
                self.versions |= {str(answer["model_version"]) for answer in answers}
                time.sleep(0.05)


def _materialize(env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [
        *(sys.executable, "-m", "dagster", "asset", "materialize"),
        *("-m", "mlops_assets.definitions", "--select", SELECTION),
        *("--config-json", json.dumps(RUN_CONFIG)),
    ]
    with open(log, "wb") as sink:
        return subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_two_training_runs_and_serving_traffic_at_once_lose_nothing(
    postgres: PostgresServer,
    mlflow_server: MlflowServer,
    state: StatePaths,
    shared_data: Path,
    tmp_path: Path,
) -> None:
    import dagster as dg
    from deltalake import DeltaTable
    from mlflow import MlflowClient

    source = small_fraud_csv(shared_data, tmp_path / "fraud_sample.csv", negatives=1500)
    frame = pd.read_csv(source)
    serving_folder, lake = tmp_path / "serving", tmp_path / "serving" / "lake"
    env = {
        **os.environ,
        **production_env(postgres, mlflow_server, lake, source),
        **postgres.dagster_env(postgres.create_database("dagster_concurrency")),
        "MLOPS_MODEL_NAME": MODEL,
        "MLOPS_DELTA_ENGINE": "delta-rs",
        "DAGSTER_HOME": str(prepare_dagster_home(state, "production")),
    }
    seed = seed_champion(mlflow_server.url, frame, MODEL)
    server = start_server(serving_folder, mlflow_server.url, CHAMPION_ALIAS, "--model-name", MODEL)
    traffic = Traffic(server.url, frame[FEATURES].to_dict("records"))
    runs: list[subprocess.Popen] = []
    try:
        traffic.start()
        runs = [_materialize(env, tmp_path / f"run-{index}.log") for index in range(2)]
        codes = [run.wait(360) for run in runs]
        time.sleep(1.0)  # a little traffic after the last alias move
    finally:
        traffic.stopping.set()
        traffic.join(60)
        for run in runs:
            _stop(run)
        server_code = server.stop()
    logs = {f"run-{i}": (tmp_path / f"run-{i}.log").read_text(errors="replace") for i in range(2)}
    logs |= {"server": server.output(), "mlflow": mlflow_server.process.output(200_000)}
    assert codes == [0, 0], {name: text[-3000:] for name, text in logs.items()}
    assert server_code == 0 and not traffic.failures, traffic.failures[:5]
    assert not [name for name, text in logs.items() if "database is locked" in text.lower()]

    # Dagster: both runs succeeded, as rows of the PostgreSQL run storage.
    pg_env = {name: env[name] for name in env if name.startswith("DAGSTER_PG_")}
    with (
        scoped_environment(pg_env),
        dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance,
    ):
        records = instance.get_run_records()
        assert sorted(r.dagster_run.status.value for r in records) == ["SUCCESS", "SUCCESS"]
        recorded = {
            table: sorted(
                int(event.asset_materialization.metadata["delta_version"].value)
                for event in instance.fetch_materializations(dg.AssetKey(table), limit=10).records
            )
            for table in TABLES
        }
        champion_runs = [
            {
                key: event.asset_materialization.metadata[key].value
                for key in ("decision", "reason", "challenger_version", "champion_before")
            }
            for event in instance.fetch_materializations(dg.AssetKey("champion_model"), 10).records
        ]
        # each run decided on the version it registered itself (values handed between steps
        # are per run: with one file per asset, both decisions read the last-registered one)
        handed = {
            key: {
                event.run_id: str(event.asset_materialization.metadata[field].value)
                for event in instance.fetch_materializations(dg.AssetKey(key), 10).records
            }
            for key, field in (
                ("registered_model_version", "version"),
                ("champion_model", "challenger_version"),
            )
        }
    registered, decided = handed["registered_model_version"], handed["champion_model"]
    assert len(registered) == 2 and len(set(registered.values())) == 2, handed
    assert decided == registered, handed
    [(pg_runs,)] = postgres.query(
        "dagster_concurrency", "SELECT count(*) FROM runs WHERE status = 'SUCCESS'"
    )

    # Delta: every commit landed, gapless, one per run and writer; each run got its own.
    commits = {}
    for table in TABLES:
        history = DeltaTable(str(lake / table)).history()
        versions = sorted(int(entry["version"]) for entry in history)
        assert versions == list(range(len(versions))) == recorded[table], (table, versions)
        commits[table] = len(versions)
    assert commits == dict.fromkeys(TABLES, 2)

    # Inference log: exactly the acknowledged predictions, each once.
    logged = DeltaTable(str(lake / "inference_log")).to_pandas()["request_id"]
    assert logged.is_unique and set(logged) == set(traffic.acknowledged)
    assert len(logged) == len(traffic.acknowledged) == len(set(traffic.acknowledged)) > 0

    # Champion: one decision per challenger, each against the champion of its turn.
    promotions = DeltaTable(str(lake / PROMOTIONS_TABLE)).to_pandas()
    promotions = promotions.sort_values("decided_at").reset_index(drop=True)
    assert len(promotions) == 2, champion_runs
    assert promotions["challenger_version"].is_unique
    champion = int(seed)
    moves = 0
    for row in promotions.itertuples():
        assert row.champion_version == champion, promotions[["challenger_version", "action"]]
        moved = [move for move in json.loads(row.alias_moves) if move["alias"] == CHAMPION_ALIAS]
        assert len(moved) == (1 if row.action == "promote" else 0)
        moves += len(moved)
        champion = row.challenger_version if row.action == "promote" else champion
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    final = client.get_model_version_by_alias(MODEL, CHAMPION_ALIAS).version
    assert int(final) == champion
    decisions = promotions[["challenger_version", "champion_version", "action"]].values.tolist()
    print(
        f"\nconcurrency: 2 runs ({pg_runs} SUCCESS rows in PostgreSQL), Delta commits {commits} "
        f"all landed; inference_log {len(logged)} rows = {len(traffic.acknowledged)} "
        f"acknowledged, 0 duplicates, served by versions {sorted(traffic.versions)}; "
        f"decisions {decisions}, champion moved {moves} time(s), now v{final}; "
        "no 'database is locked'"
    )

"""Labeled production rows lack non-model columns (``Time``) by construction; once they
outnumber the source rows, the blocking null-rate check must still pass, or retraining
would stop for good as feedback accumulates."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from mlops_assets.constants import FEEDBACK_TABLE, INFERENCE_LOG_TABLE
from mlops_assets.core import synthetic
from mlops_assets.core.paths import StatePaths
from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets.core.validation import check_null_rates
from mlops_assets.defs.ingestion import raw_transactions, transactions, transactions_checks
from mlops_assets.defs.monitoring import labeled_feedback
from mlops_assets.resources import DataSource, Lakehouse
from mlops_assets_tests.core.monitoring_fixtures import feedback_rows, served_rows


def test_rows_lacking_a_column_by_construction_are_not_counted() -> None:
    frame = pd.DataFrame({"Time": [1.0, None, None, None, None], "V1": [1.0] * 5})
    assert not check_null_rates(frame, 0.5).passed  # 80 % null
    outcome = check_null_rates(frame, 0.5, lacking={"Time": 4})
    assert outcome.passed and outcome.metadata["null_rates"]["Time"] == 0.0
    gaps = pd.DataFrame({"Time": [None, None, 3.0, None, None], "V1": [1.0] * 5})
    assert not check_null_rates(gaps, 0.5, lacking={"Time": 2}).passed  # 2 of 3 source rows


def test_transactions_checks_pass_when_feedback_outnumbers_the_source(state: StatePaths) -> None:
    engine = DeltaRsEngine(str(state.lakehouse))
    source = DataSource(
        kind="synthetic", synthetic_rows=600, synthetic_seed=1, synthetic_positive_rate=0.05
    )
    setup = {"lakehouse": Lakehouse(root=str(state.lakehouse)), "data_source": source}
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize([raw_transactions, transactions], resources=setup, instance=instance)
    production = synthetic.generate(1000, seed=77, positive_rate=0.05)
    served = served_rows(production.drop(columns=["Time", "Class"]), "prod")
    engine.write(INFERENCE_LOG_TABLE, served)
    engine.write(FEEDBACK_TABLE, feedback_rows(list(served["request_id"]), production["Class"]))
    result = dg.materialize(
        [raw_transactions, labeled_feedback, transactions, transactions_checks],
        resources=setup,
        instance=instance,
        selection=[labeled_feedback, transactions, transactions_checks],
        raise_on_error=False,
    )
    assert result.success
    checks = {item.check_name: item for item in result.get_asset_check_evaluations()}
    assert checks["null_rates"].passed, checks["null_rates"].description
    silver = engine.read("transactions")
    assert silver["Time"].isna().mean() > 0.6  # the feedback rows, which lack Time

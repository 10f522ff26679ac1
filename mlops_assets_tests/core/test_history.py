"""The promotions and deployments tables: schema, appends, idempotency keys, lookups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from mlops_assets.constants import DEPLOYMENTS_TABLE, PROMOTIONS_TABLE
from mlops_assets.core.history import (
    DeploymentRecord,
    PromotionRecord,
    append_records,
    earlier_decision,
    last_serving,
    read_history,
    records_frame,
    replaced_by,
)
from mlops_assets.core.tables import DeltaRsEngine

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def promotion(minutes: int, challenger: int, champion: int | None, action: str, **kw):
    return PromotionRecord(
        decided_at=T0 + timedelta(minutes=minutes),
        model_name=kw.pop("model_name", "m"),
        challenger_version=challenger,
        champion_version=champion,
        action=action,
        decision=action != "keep",
        reason=f"{action} {challenger} over {champion}",
        **kw,
    )


def test_rows_have_fixed_types_and_round_trip_through_delta(tmp_path) -> None:
    engine = DeltaRsEngine(root=str(tmp_path))
    first = promotion(0, 1, None, "promote", kappa_delta_mean=None, dagster_run_id="r1")
    second = promotion(1, 2, 1, "keep", kappa_delta_mean=-0.01, prob_kappa_improves=0.2)
    frame = records_frame([first])
    assert str(frame["champion_version"].dtype) == "Int64"
    assert str(frame["decided_at"].dtype) == "datetime64[us, UTC]"
    assert str(frame["kappa_delta_mean"].dtype) == "Float64"
    assert append_records(engine, [first]) == 0
    assert append_records(engine, [second]) == 1  # same schema: a plain append
    history = read_history(engine, PROMOTIONS_TABLE)
    assert list(history["challenger_version"]) == [1, 2]
    assert history["champion_version"].isna().tolist() == [True, False]
    assert history.loc[1, "prob_kappa_improves"] == pytest.approx(0.2)
    assert earlier_decision(history, "m", 1, None) == first
    assert earlier_decision(history, "m", 2, 1) == second


def test_deployment_rows(tmp_path) -> None:
    engine = DeltaRsEngine(root=str(tmp_path))
    pending = DeploymentRecord(T0, "m", "deploy", 3, None, None, "pending", "no server")
    rolled = DeploymentRecord(
        T0 + timedelta(seconds=5),
        "m",
        "deploy",
        4,
        3,
        3,
        "rolled_back",
        "smoke failed",
        server_url="http://127.0.0.1:1",
        smoke_rows=20,
        smoke_compared=20,
        smoke_max_abs_diff=0.3,
        smoke_label_mismatches=2,
        seconds=1.5,
        dagster_run_id="r",
    )
    append_records(engine, [pending, rolled])
    history = read_history(engine, DEPLOYMENTS_TABLE)
    assert list(history["status"]) == ["pending", "rolled_back"]
    assert history["previous_version"].isna().tolist() == [True, False]
    assert history.loc[1, "smoke_max_abs_diff"] == pytest.approx(0.3)
    assert read_history(engine, "absent").empty
    assert last_serving(history, "m") == 3 and last_serving(history, "other") is None
    failed = DeploymentRecord(T0 + timedelta(seconds=9), "m", "deploy", 5, 3, None, "failed", "x")
    append_records(engine, [failed])
    assert last_serving(read_history(engine, DEPLOYMENTS_TABLE), "m") == 3
    assert last_serving(pd.DataFrame(), "m") is None


def test_idempotency_key_is_model_challenger_champion() -> None:
    rows = [
        promotion(0, 1, None, "promote"),
        promotion(1, 2, 1, "promote"),
        promotion(2, 1, 2, "rollback"),  # a rollback is not a decision about the pair (1, 2)
        promotion(3, 3, 1, "keep"),
        promotion(4, 3, 1, "promote", model_name="other"),
    ]
    history = records_frame(rows)
    assert earlier_decision(history, "m", 2, 1).decided_at == rows[1].decided_at
    assert earlier_decision(history, "m", 1, 2) is None
    assert earlier_decision(history, "m", 3, 1).action == "keep"
    assert earlier_decision(history, "other", 3, 1).action == "promote"
    assert earlier_decision(history, "m", 2, None) is None
    assert earlier_decision(pd.DataFrame(), "m", 1, None) is None


def test_replaced_by_finds_the_champion_a_version_replaced() -> None:
    history = records_frame(
        [
            promotion(0, 1, None, "promote"),
            promotion(1, 2, 1, "promote"),
            promotion(2, 3, 2, "promote"),
            promotion(3, 2, 3, "rollback"),
        ]
    )
    assert replaced_by(history, "m", 2) == 1
    assert replaced_by(history, "m", 3) == 2
    assert replaced_by(history, "m", 1) is None
    assert replaced_by(history, "m", 7) is None
    assert replaced_by(pd.DataFrame(), "m", 2) is None


def test_records_frame_needs_records() -> None:
    with pytest.raises(ValueError, match="at least one record"):
        records_frame([])


@pytest.mark.spark
def test_history_tables_on_the_spark_engine_read_by_delta_rs(spark, tmp_path) -> None:
    from mlops_assets.core.spark_tables import SparkDeltaEngine

    root = str(tmp_path / "lake")
    on_spark, on_rs = SparkDeltaEngine(root, spark), DeltaRsEngine(root=root)
    first = promotion(0, 1, None, "promote", dagster_run_id="r1")
    append_records(on_spark, [first])
    append_records(on_rs, [promotion(1, 2, 1, "promote", prob_kappa_improves=0.95)])
    append_records(on_spark, [promotion(2, 1, 2, "rollback")])
    for engine in (on_spark, on_rs):
        history = read_history(engine, PROMOTIONS_TABLE)
        assert history["action"].tolist() == ["promote", "promote", "rollback"]
        assert earlier_decision(history, "m", 1, None) == first
        assert replaced_by(history, "m", 2) == 1
    deployment = DeploymentRecord(T0, "m", "deploy", 3, None, None, "pending", "no server")
    append_records(on_spark, [deployment])
    assert last_serving(read_history(on_rs, DEPLOYMENTS_TABLE), "m") is None

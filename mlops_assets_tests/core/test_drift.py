from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.drift import detect_drift, domain_classifier, sample_rows


def _frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["V1", "V2", "V3", "Amount"])
    frame["V2"] += shift
    frame["channel"] = rng.choice(["web", "pos", "atm"], size=rows)
    return frame


COLUMNS = ["V1", "V2", "V3", "Amount", "channel"]


def test_identical_distributions_do_not_drift(tmp_path: Path) -> None:
    result = detect_drift(_frame(4000, 1), _frame(1500, 2), COLUMNS, html_path=tmp_path / "r.html")
    assert result.enough_data
    assert result.drifted_columns == () and result.drift_share == 0.0
    assert [c.column for c in result.columns] == COLUMNS
    assert result.domain is not None and result.domain.roc_auc < 0.6
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_shifted_column_is_named() -> None:
    result = detect_drift(_frame(4000, 1), _frame(1500, 2, shift=1.5), COLUMNS)
    assert result.drifted_columns == ("V2",)
    assert result.drift_share == pytest.approx(1 / 5)
    v2 = next(c for c in result.columns if c.column == "V2")
    assert v2.drifted and v2.method and v2.score >= v2.threshold
    assert result.domain.roc_auc > 0.8
    assert result.domain.top_features[0][0] == "V2"


def test_not_enough_data_gives_no_verdict() -> None:
    result = detect_drift(_frame(2000, 1), _frame(100, 2, shift=3), COLUMNS, min_rows=500)
    assert not result.enough_data and "not enough data: 100" in result.reason
    assert result.columns == () and result.domain is None


def test_reference_is_sampled_to_the_cap_with_a_seed() -> None:
    frame = _frame(1000, 1)
    assert sample_rows(frame, 200, 3).index.equals(sample_rows(frame, 200, 3).index)
    result = detect_drift(
        frame, _frame(600, 2), COLUMNS, reference_cap=300, with_domain_classifier=False
    )
    assert result.reference_rows == 300 and result.domain is None


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match=r"current data lacks columns \['V9'\]"):
        detect_drift(_frame(10, 1).assign(V9=1.0), _frame(10, 2), [*COLUMNS, "V9"])
    with pytest.raises(ValueError, match="at least one column"):
        detect_drift(_frame(10, 1), _frame(10, 2), [])


def test_domain_classifier_names_the_shifted_feature() -> None:
    result = domain_classifier(
        _frame(3000, 1), _frame(3000, 2, shift=0.8)[["V1", "V2", "V3", "Amount", "channel"]]
    )
    assert result.top_features[0][0] == "V2" and result.roc_auc > 0.65

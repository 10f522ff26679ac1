from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from mlops_assets.core.contract import ColumnSpec, InputContract, contract_from_frame
from mlops_assets.core.model_bundle import (
    PIPELINE_FILE,
    ModelBundle,
    UntrustedModelError,
    load_bundle,
    save_bundle,
)
from mlops_assets.core.model_io import load_bundle_from_uri, log_bundle


@pytest.fixture()
def bundle() -> tuple[ModelBundle, pd.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    labels = (frame["a"] > 0.8).astype(int)
    model = LogisticRegression().fit(frame, labels)
    return ModelBundle(model, threshold=0.3, contract=contract_from_frame(frame)), frame


def test_contract_roundtrip_and_differences() -> None:
    frame = pd.DataFrame({"x": [1.0], "n": [1], "c": ["a"], "f": [True]})
    contract = contract_from_frame(frame)
    assert [column.kind for column in contract.columns] == [
        "number",
        "integer",
        "string",
        "boolean",
    ]
    assert InputContract.from_json(contract.to_json()) == contract
    other = InputContract((ColumnSpec("x", "string"), ColumnSpec("z", "number")))
    assert contract.differences(other) == [
        "column 'n' removed",
        "column 'c' removed",
        "column 'f' removed",
        "column 'z' added",
        "column 'x' changed kind number -> string",
    ]


def test_threshold_is_applied(bundle) -> None:
    model, frame = bundle
    probability = model.predict_proba(frame)
    assert np.array_equal(model.predict(frame), (probability >= 0.3).astype(np.int8))


def test_save_load_roundtrip(bundle, tmp_path: Path) -> None:
    model, frame = bundle
    save_bundle(model, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")
    assert loaded.threshold == 0.3 and loaded.contract == model.contract
    assert np.allclose(loaded.predict_proba(frame), model.predict_proba(frame))


def test_untrusted_type_is_refused(bundle, tmp_path: Path) -> None:
    model, _ = bundle
    save_bundle(model, tmp_path / "b")
    sio.dump({"when": pd.Timestamp(0)}, tmp_path / "b" / PIPELINE_FILE)  # not on the allowlist
    with pytest.raises(UntrustedModelError, match="pandas"):
        load_bundle(tmp_path / "b")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="pipeline.skops"):
        load_bundle(tmp_path)


def test_pyfunc_model_returns_label_and_probability(bundle, tmp_path: Path) -> None:
    model, frame = bundle
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run():
        uri = log_bundle(model, frame)
    version = mlflow.register_model(uri, "m").version
    loaded = mlflow.pyfunc.load_model(f"models:/m/{version}")
    prediction = loaded.predict(frame.head(10))
    assert list(prediction.columns) == ["label", "probability"]
    assert np.allclose(prediction["probability"], model.predict_proba(frame.head(10)))
    assert loaded.metadata.signature is not None
    fast = load_bundle_from_uri(f"models:/m/{version}")
    assert fast.threshold == 0.3

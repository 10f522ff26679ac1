"""The latency guardrail measures the model as served, not the machine's other load."""

from __future__ import annotations

import time

from xgboost import XGBClassifier

from mlops_assets.core import guardrails, synthetic
from mlops_assets.core.contract import contract_from_frame
from mlops_assets.core.model_bundle import ModelBundle


def _bundle() -> tuple[ModelBundle, object]:
    frame = synthetic.generate(600, seed=1, positive_rate=0.1)
    features = frame.drop(columns=["Class", "Time"])
    model = XGBClassifier(n_estimators=10, max_depth=2, n_jobs=2, tree_method="hist")
    model.fit(features, frame["Class"])
    return ModelBundle(model, 0.5, contract_from_frame(features)), features


def test_latency_is_measured_single_threaded_on_a_copy() -> None:
    bundle, features = _bundle()
    latency = guardrails.median_row_latency_ms(bundle, features, repeats=5)
    assert 0 < latency < 1000
    assert bundle.pipeline.get_params()["n_jobs"] == 2  # the challenger itself is untouched
    served = guardrails._single_threaded(bundle)
    assert served.pipeline.get_params()["n_jobs"] == 1 and served is not bundle


def test_a_slow_round_does_not_decide(monkeypatch) -> None:
    bundle, features = _bundle()

    class SometimesSlow:
        """The warm-up and the whole first round compete with another process."""

        calls = 0

        def predict_proba(self, rows):
            SometimesSlow.calls += 1
            if SometimesSlow.calls <= 6:
                time.sleep(0.05)
            return bundle.predict_proba(rows)

    monkeypatch.setattr(guardrails, "_single_threaded", lambda _bundle: SometimesSlow())
    assert guardrails.median_row_latency_ms(bundle, features, repeats=5, rounds=3) < 40
    assert SometimesSlow.calls == 16

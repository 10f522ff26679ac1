from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.model_io import load_bundle_from_uri
from mlops_assets.serving.model_holder import ModelHolder, canary_share
from mlops_assets_tests.serving.registry import feature_frame


def holder(registry, alias: str, **kwargs) -> ModelHolder:
    return ModelHolder(registry.client(), registry.model_name, alias, **kwargs)


def test_waits_for_the_alias_then_loads_and_swaps(serving_registry) -> None:
    serving = holder(serving_registry, "h1_champion")
    outcome = serving.refresh()
    assert outcome.ok and not outcome.changed and serving.state.primary is None
    assert serving.waiting_reason == "no version of 'fraud_detector' has alias 'h1_champion' yet"
    serving_registry.set_alias("h1_champion", 1)
    assert serving.refresh().changed == ["primary: None -> 1"]
    first = serving.state.primary
    assert first.version == 1 and first.alias == "h1_champion" and serving.waiting_reason is None
    assert first.tags == {"data_version": "transactions@v3", "git_commit": "0123abc"}
    assert first.scorer.path == "numpy" and first.run_id
    assert serving.refresh().changed == []  # unchanged alias: nothing reloads
    serving_registry.set_alias("h1_champion", 2)
    assert serving.refresh().changed == ["primary: 1 -> 2"]
    assert first.version == 1  # a request holding the old state keeps its version
    assert serving.state.primary.scorer.bundle.threshold == 0.3


def test_a_failing_version_leaves_the_old_one_serving(serving_registry) -> None:
    serving_registry.set_alias("h2_champion", 3)
    serving = holder(serving_registry, "h2_champion")
    serving.refresh()
    serving_registry.set_alias("h2_champion", 5)  # its stored pipeline is gone
    outcome = serving.refresh()
    assert not outcome.ok and serving.state.primary.version == 3
    failure = outcome.failures[0]
    assert failure.version == 5 and "pipeline.skops" in failure.error
    assert serving.last_failure == failure and serving.failure_count == 1
    # Asked again (a poll, or an admin reload after the poller tried first): the standing
    # failure is reported, not retried.
    assert serving.refresh().failures == [failure] and serving.failure_count == 1
    retried = serving.refresh(force=True).failures[0]  # a forced reload does retry
    assert retried.version == 5 and retried is not failure and serving.failure_count == 2


def test_a_version_that_fails_to_warm_is_refused(serving_registry) -> None:
    class Broken:
        def predict_proba(self, frame):
            raise RuntimeError("cannot score")

    def broken_loader(uri: str):
        bundle = load_bundle_from_uri(uri)
        return type(bundle)(Broken(), bundle.threshold, bundle.contract)

    serving_registry.set_alias("h3_champion", 1)
    bad = holder(serving_registry, "h3_champion", loader=broken_loader)
    outcome = bad.refresh()
    assert bad.state.primary is None and "cannot score" in outcome.failures[0].error
    assert "version 1 failed to load" in bad.waiting_reason


def test_canary_split_is_deterministic_and_proportional(serving_registry) -> None:
    serving_registry.set_alias("h4_champion", 1)
    serving_registry.set_alias("h4_canary", 2)
    serving = holder(serving_registry, "h4_champion", canary_alias="h4_canary", canary_fraction=0.2)
    serving.refresh()
    state = serving.state
    ids = [f"req-{index}" for index in range(4000)]
    versions = [state.pick(rid).version for rid in ids]
    share = versions.count(2) / len(ids)
    assert abs(share - 0.2) < 0.03
    assert [state.pick(rid).version for rid in ids[:200]] == versions[:200]
    assert all((canary_share(rid) < 0.2) == (v == 2) for rid, v in zip(ids, versions, strict=True))
    serving_registry.delete_alias("h4_canary")
    assert serving.refresh().changed == ["canary: 2 -> None"]
    assert {serving.state.pick(rid).version for rid in ids[:100]} == {1}


def test_swap_is_atomic_for_concurrent_readers(serving_registry) -> None:
    serving_registry.set_alias("h5_champion", 1)
    serving = holder(serving_registry, "h5_champion")
    serving.refresh()
    frame, _ = feature_frame(rows=5, seed=9)
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    seen, errors, stop = set(), [], threading.Event()

    def reader() -> None:
        while not stop.is_set():
            model = serving.state.pick("x")
            try:
                batch = model.validator.validate(rows)
                probability = model.scorer.probabilities(batch)
                reference = model.scorer.bundle.predict_proba(pd.DataFrame(rows))
                assert np.allclose(probability, reference, atol=1e-6)
                seen.add(model.version)
            except Exception as error:  # noqa: BLE001
                errors.append(error)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for version in (2, 1, 2):
        serving_registry.set_alias("h5_champion", version)
        serving.refresh()
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors and seen == {1, 2}


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="canary fraction"):
        ModelHolder(None, "m", "champion", canary_fraction=1.5)

"""The champion is never scored on its own training rows, even after the split changed.

Real Delta versions of ``training_splits`` and a real MLflow registry whose champion carries
lineage tags pointing at the splits version it was trained from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_assets.constants import SPLIT_COLUMN, SPLITS_TABLE
from mlops_assets.core import aliases
from mlops_assets.core.champion import select_champion
from mlops_assets.core.comparison import test_rows
from mlops_assets.core.guardrails import PromotionPolicy
from mlops_assets.core.history import read_history
from mlops_assets.core.lineage import Lineage
from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets.core.unseen_rows import drop_seen_rows
from mlops_assets_tests.core.promotion_fixtures import fresh_model, registry_fixture, splits_frame

promotion_registry = registry_fixture


def resplit(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    """The same rows under another split (as after a changed split seed)."""
    position = (np.arange(len(frame)) + offset) % 10
    split = np.where(position < 3, "train", np.where(position < 4, "valid", "test"))
    return frame.assign(**{SPLIT_COLUMN: split})


def seen_by_truth(old: pd.DataFrame, new: pd.DataFrame) -> int:
    """Test rows of ``new`` that were train/valid in ``old``, counted by row position."""
    was_seen = old[SPLIT_COLUMN].isin(["train", "valid"]).to_numpy()
    return int((was_seen & (new[SPLIT_COLUMN] == "test").to_numpy()).sum())


def test_drop_seen_rows_drops_exactly_the_rows_equal_in_every_shared_feature() -> None:
    frame = splits_frame(rows=400)
    rows = test_rows(frame, "training_splits@v1")
    seen = rows.features.iloc[:25].assign(extra=1.0)  # a column the test rows lack is ignored
    seen["count"] = seen["count"].astype("float64")  # read back as another storage type
    kept, dropped = drop_seen_rows(rows, seen, "old@v0")
    assert dropped == 25 and len(kept.labels) == len(rows.labels) - 25
    assert kept.source == "training_splits@v1 minus 25 row(s) in old@v0"
    pd.testing.assert_frame_equal(kept.features, rows.features.iloc[25:].reset_index(drop=True))
    assert list(kept.labels) == list(rows.labels[25:])
    same, none = drop_seen_rows(rows, rows.features.iloc[:0], "empty@v0")
    assert none == 0 and same is rows


def test_drop_seen_rows_names_what_is_wrong() -> None:
    rows = test_rows(splits_frame(rows=400), "training_splits@v1")
    with pytest.raises(ValueError, match="other@v0 shares no feature column"):
        drop_seen_rows(rows, pd.DataFrame({"x": [1.0]}), "other@v0")
    positives = rows.features[rows.labels == 1]
    with pytest.raises(ValueError, match="minus .* row.* in old@v0"):
        drop_seen_rows(rows, positives, "old@v0")


@pytest.fixture()
def engine(tmp_path) -> DeltaRsEngine:
    return DeltaRsEngine(root=str(tmp_path / "lake"))


def champion_with_lineage(registry, engine, splits_version: int | None, uri: str | None = None):
    """A model whose champion (weak) was trained from ``training_splits@v<splits_version>``."""
    client = registry.client()
    name, [champion, challenger] = fresh_model(registry, "weak", "good")
    aliases.promote(client, name, str(champion))
    if splits_version is not None:
        uri = uri or engine.uri(SPLITS_TABLE)
        lineage = Lineage(uri, 0, uri, splits_version, uri, 0, "none")
        for key, value in lineage.tags().items():
            client.set_model_version_tag(name, str(champion), key, value)
    return name, champion, challenger


def decide(registry, engine, name, challenger, rows):
    return select_champion(
        registry.client(),
        engine,
        name,
        challenger,
        rows,
        PromotionPolicy(),
        resamples=200,
        seed=1,
        run_id="run-1",
        splits_name=SPLITS_TABLE,
    )


def test_after_a_split_change_the_champion_is_not_scored_on_its_training_rows(
    promotion_registry, engine
) -> None:
    old = splits_frame()
    engine.write(SPLITS_TABLE, old, mode="overwrite")  # v0: the champion's
    new = resplit(old, offset=3)
    ref = engine.write(SPLITS_TABLE, new, mode="overwrite")  # v1: the challenger's
    name, _, challenger = champion_with_lineage(promotion_registry, engine, 0)
    rows = test_rows(engine.read(SPLITS_TABLE, ref.version), ref.describe())

    outcome = decide(promotion_registry, engine, name, challenger, rows)

    expected = seen_by_truth(old, new)
    assert expected > 100  # the change put many champion rows into the test split
    check = outcome.seen_rows
    assert check.checked and check.dropped == expected
    assert f"{expected} of {len(rows.labels)} test row(s) were train/valid rows" in check.detail
    assert outcome.bootstrap.rows == len(rows.labels) - expected
    [record] = read_history(engine, "promotions").to_dict("records")
    assert record["splits_table"].startswith("training_splits@v1 minus ")
    assert record["bootstrap_rows"] == len(rows.labels) - expected


def test_with_a_stable_split_nothing_is_dropped(promotion_registry, engine) -> None:
    frame = splits_frame()
    engine.write(SPLITS_TABLE, frame, mode="overwrite")
    grown = pd.concat([frame, resplit(splits_frame(rows=300, seed=5), 0)], ignore_index=True)
    ref = engine.write(SPLITS_TABLE, grown, mode="overwrite")
    name, _, challenger = champion_with_lineage(promotion_registry, engine, 0)
    rows = test_rows(engine.read(SPLITS_TABLE, ref.version), ref.describe())

    outcome = decide(promotion_registry, engine, name, challenger, rows)

    assert outcome.seen_rows.checked and outcome.seen_rows.dropped == 0
    assert outcome.bootstrap.rows == len(rows.labels) and outcome.decision.promote


@pytest.mark.parametrize(
    ("splits_version", "uri", "words"),
    [
        (None, None, "it has no usable lineage"),
        (7, None, "training_splits@v7 is unreadable"),
        (0, "/elsewhere/training_splits", "it was trained from /elsewhere/training_splits, not "),
    ],
)
def test_when_the_champion_rows_cannot_be_read_every_test_row_is_used_and_the_reason_given(
    promotion_registry, engine, splits_version, uri, words
) -> None:
    ref = engine.write(SPLITS_TABLE, splits_frame(), mode="overwrite")
    name, champion, challenger = champion_with_lineage(
        promotion_registry, engine, splits_version, uri
    )
    rows = test_rows(engine.read(SPLITS_TABLE), ref.describe())

    outcome = decide(promotion_registry, engine, name, challenger, rows)

    check = outcome.seen_rows
    assert not check.checked and check.dropped == 0 and words in check.detail
    assert check.detail.startswith(f"not checked whether champion v{champion} trained on")
    assert outcome.bootstrap.rows == len(rows.labels)

"""Deployment logic against a hand-written fake server: every success and failure path."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.aliases import AliasMove
from mlops_assets.core.deployment import Deployer, DeploySettings, deploy_version
from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets.core.smoke import json_rows, smoke_case
from mlops_assets_tests.core.promotion_fixtures import logistic, splits_frame

FRAME = splits_frame(rows=200)
FEATURES, LABELS = FRAME.drop(columns=["label", "split"]), FRAME["label"].to_numpy()
BUNDLES = {1: logistic(1), 2: logistic(3), 3: logistic(1, flip=0.2)}


@dataclass
class Reloaded:
    version: int | None
    error: str | None


@dataclass
class Answer:
    label: int
    probability: float
    model_version: int


@dataclass
class FakeServer:
    """Follows ``registry['champion']`` on reload, like the real server, with knobs to fail."""

    registry: dict[str, int]
    serving: int | None = None
    reachable: bool = True
    broken: set[int] = field(default_factory=set)  # versions that fail to load
    stuck: bool = False  # reload never swaps and reports nothing
    admin: bool = True  # False: reload refused (403); the poller swaps on model_info
    skew: dict[int, float] = field(default_factory=dict)  # added to served probabilities
    refuse: set[int] = field(default_factory=set)  # versions whose server refuses the rows
    canary: list[int] = field(default_factory=list)  # versions answering the next requests
    failure: dict | None = None
    calls: list[str] = field(default_factory=list)

    def _check(self) -> None:
        if not self.reachable:
            raise ConnectionError("connection refused")

    def _swap(self) -> None:
        target = self.registry["champion"]
        if self.stuck or target == self.serving:
            return
        if target in self.broken:
            self.failure = {"role": "primary", "version": target, "error": "artifacts missing"}
        else:
            self.serving, self.failure = target, None

    def model_info(self) -> dict:
        self._check()
        self.calls.append("model_info")
        if not self.admin:
            self._swap()  # the registry poll
        return {"version": self.serving, "last_failure": self.failure}

    def reload(self, force: bool = False) -> Reloaded:
        self._check()
        self.calls.append(f"reload(force={force})")
        if not self.admin:
            raise RuntimeError("serving endpoint answered 403: admin is disabled")
        self._swap()
        error = self.failure["error"] if self.failure else None
        return Reloaded(self.serving, error)

    def predict(self, rows: list[dict]) -> list[Answer]:
        self._check()
        version = self.canary.pop(0) if self.canary else self.serving
        if version in self.refuse:
            raise RuntimeError("serving endpoint answered 422: column 'Amount': null")
        bundle = BUNDLES[version]
        frame = pd.DataFrame(rows).astype(float)
        probabilities = np.clip(bundle.predict_proba(frame) + self.skew.get(version, 0.0), 0, 1)
        return [Answer(int(p >= bundle.threshold), float(p), version) for p in probabilities]


class Clock:
    """A fake monotonic clock that the fake sleep advances."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def smoke(version: int):
    return smoke_case(version, BUNDLES[version], FEATURES, LABELS, 10)


def deploy(server: FakeServer, rollback: bool = True, last_good: int | None = None, **settings):
    clock = Clock()
    deployer = Deployer(
        server,
        DeploySettings(wait_timeout_s=3.0, poll_interval_s=0.5, **settings),
        clock.sleep,
        lambda: clock.now,
    )

    def restore(version: int) -> tuple[AliasMove, ...]:
        before, server.registry["champion"] = server.registry["champion"], version
        return (AliasMove("champion", str(before), str(version)),)

    target = server.registry["champion"]
    return deploy_version(deployer, target, smoke, restore if rollback else None, last_good)


def test_deployed_when_the_server_serves_it_and_answers_like_offline() -> None:
    server = FakeServer({"champion": 2}, serving=1)
    outcome = deploy(server)
    assert (outcome.status, outcome.previous_version, outcome.serving_version) == ("deployed", 1, 2)
    assert outcome.smoke.passed and outcome.smoke.compared == 10 and outcome.smoke.rows == 10
    assert outcome.smoke.max_abs_diff == 0.0 and outcome.moves == ()
    assert server.calls[:2] == ["model_info", "reload(force=False)"]


def test_pending_when_no_server_answers() -> None:
    outcome = deploy(FakeServer({"champion": 2}, reachable=False))
    assert outcome.status == "pending" and outcome.serving_version is None
    assert "no server reachable" in outcome.reason and "loads version 2" in outcome.reason


@pytest.mark.parametrize(
    ("server", "words"),
    [
        (FakeServer({"champion": 2}, serving=1, skew={2: 0.2}), "smoke test of version 2 failed"),
        (FakeServer({"champion": 2}, serving=1, stuck=True), "still reports version 1, not 2"),
        (FakeServer({"champion": 2}, serving=1, broken={2}), "could not load version 2"),
        (FakeServer({"champion": 2}, serving=1, refuse={2}), "refused the smoke rows"),
    ],
    ids=["smoke mismatch", "never reports", "cannot load", "rejects rows"],
)
def test_failure_rolls_the_alias_and_the_server_back(server: FakeServer, words: str) -> None:
    outcome = deploy(server)
    assert outcome.status == "rolled_back", outcome.reason
    assert words in outcome.reason and "rolled back to version 1, which serves" in outcome.reason
    assert server.registry["champion"] == 1 and server.serving == 1
    assert outcome.serving_version == 1 and outcome.moves == (AliasMove("champion", "2", "1"),)


def test_smoke_mismatch_is_measured() -> None:
    outcome = deploy(FakeServer({"champion": 2}, serving=1, skew={2: 0.2}))
    assert not outcome.smoke.passed and outcome.smoke.max_abs_diff == pytest.approx(0.2, abs=0.01)
    assert outcome.smoke.label_mismatches > 0


def test_server_that_already_follows_the_alias_rolls_back_to_the_last_good_version() -> None:
    server = FakeServer({"champion": 2}, serving=2, skew={2: 0.2})  # its poll was faster
    outcome = deploy(server, last_good=1)
    assert outcome.status == "rolled_back" and outcome.previous_version == 1
    assert server.registry["champion"] == 1 and server.serving == 1
    healthy = deploy(FakeServer({"champion": 2}, serving=2), last_good=1)
    assert healthy.status == "deployed" and healthy.previous_version == 1


def test_no_rollback_without_an_earlier_version_or_when_not_asked() -> None:
    first = deploy(FakeServer({"champion": 2}, broken={2}))
    assert first.status == "failed" and "no earlier version was serving" in first.reason
    manual = deploy(FakeServer({"champion": 2}, serving=1, broken={2}), rollback=False)
    assert manual.status == "failed" and "no rollback requested" in manual.reason


def test_rollback_that_does_not_come_back_is_a_failure() -> None:
    server = FakeServer({"champion": 2}, serving=1, skew={2: 0.2})
    original = server.reload

    def reload(force: bool = False):
        if server.registry["champion"] == 1:
            server.stuck = True  # the old version never returns
        return original(force)

    server.reload = reload
    outcome = deploy(server)
    assert outcome.status == "failed" and "rolled the alias back to 1 but it does not serve" in (
        outcome.reason
    )


def test_refused_reload_falls_back_on_the_registry_poll() -> None:
    outcome = deploy(FakeServer({"champion": 2}, serving=1, admin=False))
    assert outcome.status == "deployed" and outcome.serving_version == 2
    stuck = deploy(FakeServer({"champion": 2}, serving=1, admin=False, stuck=True))
    assert stuck.status == "rolled_back" and "reload refused" in stuck.reason


def test_canary_answers_are_retried() -> None:
    assert deploy(FakeServer({"champion": 2}, serving=1, canary=[3, 3])).status == "deployed"
    outcome = deploy(FakeServer({"champion": 2}, serving=1, canary=[3] * 5), smoke_attempts=5)
    assert outcome.status == "rolled_back"
    assert "answered by version(s) [3], not 2 (5 tries)" in outcome.reason


def test_smoke_rows_follow_the_contract() -> None:
    frame = FEATURES.head(4).copy()
    frame.loc[0, "V3"] = np.nan
    bundle: ModelBundle = BUNDLES[1]
    rows = json_rows(bundle, frame)
    assert list(rows[0]) == bundle.contract.names and rows[0]["V3"] is None
    assert isinstance(rows[1]["count"], int) and isinstance(rows[1]["V1"], float)
    assert not any(isinstance(v, float) and math.isnan(v) for row in rows for v in row.values())
    with pytest.raises(ValueError, match=r"lack contract column\(s\) \['Amount'\]"):
        json_rows(bundle, frame.drop(columns="Amount"))
    case = smoke_case(1, bundle, FEATURES, LABELS, 10)
    assert len(case.rows) == 10 and len(case.probabilities) == 10
    assert case.labels.sum() >= 3  # half the sample rows are positives, mostly predicted so


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="wait_timeout_s must be > 0.*tolerance must be >= 0"):
        DeploySettings(wait_timeout_s=0, tolerance=-1)

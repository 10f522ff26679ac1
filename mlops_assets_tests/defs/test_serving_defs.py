from __future__ import annotations

import dagster as dg
import pandas as pd

from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets.definitions import build_definitions, embedded_resources
from mlops_assets.defs.serving import OBSERVE_JOB_NAME, observe_served_tables, served_tables
from mlops_assets.resources import Lakehouse, ServingEndpoint


def observe(lake: str) -> dict[str, tuple[str, dict]]:
    defs = dg.Definitions(
        assets=[served_tables],
        jobs=[observe_served_tables],
        resources={"lakehouse": Lakehouse(root=lake)},
    )
    result = defs.resolve_job_def(OBSERVE_JOB_NAME).execute_in_process()
    assert result.success
    observations = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_OBSERVATION":
            observation = event.event_specific_data.asset_observation
            observations[observation.asset_key.to_user_string()] = (
                observation.tags["dagster/data_version"],
                observation.metadata,
            )
    return observations


def test_data_version_is_the_delta_version(tmp_path) -> None:
    lake = str(tmp_path / "lake")
    first = observe(lake)
    assert {key: version for key, (version, _) in first.items()} == {
        "inference_log": "absent",
        "feedback": "absent",
    }
    engine = DeltaRsEngine(lake)
    engine.write("inference_log", pd.DataFrame({"request_id": ["a"], "probability": [0.1]}))
    engine.write("inference_log", pd.DataFrame({"request_id": ["b"], "probability": [0.2]}))
    second = observe(lake)
    assert second["inference_log"][0] == "1" and second["feedback"][0] == "absent"
    assert second["inference_log"][1]["delta_version"].value == 1


def test_definitions_hold_the_tables_and_the_serving_resource(state) -> None:
    resources = embedded_resources(str(state.root))
    assert isinstance(resources["serving"], ServingEndpoint)
    defs = build_definitions(resources)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"inference_log", "feedback"} <= keys
    spec = defs.resolve_assets_def("inference_log").specs_by_key[dg.AssetKey("inference_log")]
    assert spec.group_name == "monitoring" and "delta" in spec.kinds
    assert defs.resolve_job_def(OBSERVE_JOB_NAME) is not None

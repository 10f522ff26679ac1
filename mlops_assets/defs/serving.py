"""The serving endpoint's Delta tables as observable source assets (group ``monitoring``).

The server writes ``inference_log`` and ``feedback`` on its own schedule; Dagster observes
them, and the data version of each is its Delta version, so monitoring assets and sensors
see new rows as a new data version.
"""

import dagster as dg

from mlops_assets.constants import FEEDBACK_TABLE, INFERENCE_LOG_TABLE, MONITORING_GROUP
from mlops_assets.resources import Lakehouse

SERVED_TABLES = {
    INFERENCE_LOG_TABLE: "Every answered prediction (features, probability, label, version).",
    FEEDBACK_TABLE: "Late true labels sent to /feedback, joinable on request_id.",
}


@dg.multi_observable_source_asset(
    specs=[
        dg.AssetSpec(name, description=text, group_name=MONITORING_GROUP, kinds={"delta"})
        for name, text in SERVED_TABLES.items()
    ],
    can_subset=True,
)
def served_tables(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    """Observe the serving tables: data version = Delta version (``absent`` before any row)."""
    tables = lakehouse.tables()
    for key in context.selected_asset_keys:
        name = key.to_user_string()
        version = tables.latest_version(name)
        yield dg.ObserveResult(
            asset_key=key,
            data_version=dg.DataVersion("absent" if version is None else str(version)),
            metadata={
                "delta_version": -1 if version is None else version,
                "table_uri": dg.MetadataValue.path(tables.uri(name)),
            },
        )


OBSERVE_JOB_NAME = "observe_served_tables"
observe_served_tables = dg.define_asset_job(
    OBSERVE_JOB_NAME,
    selection=dg.AssetSelection.assets(*SERVED_TABLES),
    description="Record the current Delta versions of inference_log and feedback.",
)
JOBS = [observe_served_tables]

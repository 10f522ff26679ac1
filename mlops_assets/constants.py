"""Names shared across the asset graph: groups, tables, the registered model and its aliases."""

from __future__ import annotations

# Asset groups
DATA_GROUP = "data"
TRAINING_GROUP = "training"
DEPLOYMENT_GROUP = "deployment"
MONITORING_GROUP = "monitoring"

# Delta tables (folders under the lakehouse root)
RAW_TRANSACTIONS_TABLE = "raw_transactions"
TRANSACTIONS_TABLE = "transactions"
SPLITS_TABLE = "training_splits"
RESAMPLED_TRAIN_TABLE = "resampled_train"
PROMOTIONS_TABLE = "promotions"
DEPLOYMENTS_TABLE = "deployments"
INFERENCE_LOG_TABLE = "inference_log"
FEEDBACK_TABLE = "feedback"
LABELED_FEEDBACK_TABLE = "labeled_feedback"  # served rows joined with their true labels

# Columns the silver table adds or normalises
LABEL_COLUMN = "label"  # the target, normalised to 0/1 in `transactions`
SPLIT_COLUMN = "split"  # train / valid / test in `training_splits`

# MLflow
EXPERIMENT_NAME = "mlops_assets"
REGISTERED_MODEL_NAME = "fraud_detector"
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
PREVIOUS_CHAMPION_ALIAS = "previous_champion"

"""Pure Python logic of the system. Nothing under this package imports dagster."""

"""Spot ingest on Airflow: config model, dissectors, adapters and Airflow glue."""

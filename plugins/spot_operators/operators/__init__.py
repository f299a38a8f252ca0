"""Airflow operators of the Spot ingest (importable by every Airflow process via plugins/)."""

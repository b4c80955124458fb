"""Data sources, ingestion, QC, preparation and splits."""

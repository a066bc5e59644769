"""Shipped tables of real measurements: Parquet data and a JSON manifest each (see bench.tables)."""

"""Persistent tables: a DuckDB warehouse (`warehouse.write_table`, `read_table`, `query`)."""

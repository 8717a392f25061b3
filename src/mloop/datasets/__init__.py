"""Datasets: immutable, content-addressed versions of files and tables, with profiles, splits and lineage."""

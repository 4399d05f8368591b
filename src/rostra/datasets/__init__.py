"""Data sets (seed 001's "Data Operations"): named lists of JSON values with metadata."""

"""Reading, indexing, splitting and generating PASTIS-format data."""

"""Figures of the am4cm study: pure functions that write one PNG each."""

"""Data assets (group ``data``): raw and silver Delta tables, splits, resampled train."""

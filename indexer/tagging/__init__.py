"""Catalog tagging jobs: a taxonomy in, tags with confidences and accept / review / reject decisions out.

The job scores the store's own image vectors against prompt-ensemble label vectors (no re-embedding), applies a
calibration fitted on labelled items (temperature or Platt scaling, a linear probe, per-value thresholds chosen for
a target precision), and writes the tags with their provenance into the store, where accepted ones become
filterable attributes. People's decisions always win over later automated runs.
"""

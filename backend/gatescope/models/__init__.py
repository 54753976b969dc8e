"""Models on disk: reading model files (files.py), checking them (state_dict.py, checks.py),
and the content-addressed store with the bundled presets (store.py, stored.py)."""

"""The operator console: the HTTP status API (``api.py``), and the web UI built on it."""

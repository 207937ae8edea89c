"""The API layer: per-version action handlers over the backend, and the rendering of records."""

"""HTTP server: app factory, settings, auth, CLI, health and metrics."""

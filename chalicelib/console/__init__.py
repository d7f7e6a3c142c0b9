"""The operator console: static files served by the API itself (no extra server, no build step)."""

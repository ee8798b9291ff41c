"""Integration tests against the real example stack (nginx, Prometheus, gunicorn on loopback)."""

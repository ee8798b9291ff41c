"""A real service to gate: a small web app in two versions behind nginx, scraped by Prometheus."""

"""The instance's HTTP server: JSON API under /api (and, later, HTML pages)."""

from .app import create_app

__all__ = ["create_app"]

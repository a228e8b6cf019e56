"""trustcircle: a Circle-of-Trust code-signing platform."""

__version__ = "0.1.0"

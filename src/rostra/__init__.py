"""Rostra: a self-hosted API platform."""

__version__ = "0.1.0"

"""Errors of the bottom layer, shared by the settings, the store and everything above."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem, phrased as: where, what is wrong, how to fix it."""

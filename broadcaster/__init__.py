"""Broadcaster: one incident update, fanned out to email, X, webhooks and a static status mirror."""

__version__ = "0.1.0"

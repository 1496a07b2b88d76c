"""Pytest fixtures and test helpers that start real services on free ports."""

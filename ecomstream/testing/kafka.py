"""Placeholder: fixtures arrive with their launcher."""

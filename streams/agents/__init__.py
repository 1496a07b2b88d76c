"""Agents: each reads a topic, calls ``ecomstream`` logic, writes topics or tables."""

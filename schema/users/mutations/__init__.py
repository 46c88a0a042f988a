"""Mutations of the users subgraph, one concern per module."""

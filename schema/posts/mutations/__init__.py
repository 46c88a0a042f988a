"""Mutations of posts and comments, one concern per module."""

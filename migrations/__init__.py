"""Alembic migrations of the relational store. Never edit one that has landed."""

"""merge the events, posts and takes branches into one head

Revision ID: 0004
Revises: events1, posts1, takes1
Create Date: 2026-11-26 03:00:00

The three were written in parallel from 0002; from here on there is one head
again, so `alembic upgrade head` and new revisions have a single parent.
"""
from __future__ import annotations

revision = '0004'
down_revision = ('events1', 'posts1', 'takes1')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

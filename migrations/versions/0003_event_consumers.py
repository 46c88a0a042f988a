"""event consumers: the events each consumer has applied (idempotency by event id)

Revision ID: events1
Revises: 0002
Create Date: 2026-11-26 02:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import datasources.sql

revision = 'events1'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consumed_events',
    sa.Column('consumer', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('consumed_at', datasources.sql.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'event_id', name=op.f('pk_consumed_events'))
    )
    op.create_index('ix_consumed_events_consumed_at', 'consumed_events', ['consumed_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_consumed_events_consumed_at', table_name='consumed_events')
    op.drop_table('consumed_events')

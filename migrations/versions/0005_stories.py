"""stories: stories (stickers as JSON) and their viewers, the relational StoryStore

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 03:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import datasources.sql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stories',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('author_id', sa.BigInteger(), nullable=False),
    sa.Column('media_id', sa.BigInteger(), nullable=False),
    sa.Column('audience', sa.String(length=16), nullable=False),
    sa.Column('stickers', sa.JSON(), nullable=False),
    sa.Column('created_at', datasources.sql.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', datasources.sql.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stories'))
    )
    op.create_index('ix_stories_author_expires', 'stories', ['author_id', 'expires_at'], unique=False)
    op.create_table('story_views',
    sa.Column('story_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('viewer_id', sa.BigInteger(), nullable=False),
    sa.Column('viewed_at', datasources.sql.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reaction', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_story_views_story_id_stories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('story_id', 'viewer_id', name=op.f('pk_story_views'))
    )


def downgrade() -> None:
    op.drop_table('story_views')
    op.drop_index('ix_stories_author_expires', table_name='stories')
    op.drop_table('stories')

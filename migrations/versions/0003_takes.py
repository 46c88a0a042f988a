"""takes: short videos, likes, views, Behind-the-Takes, templates, trends

Revision ID: takes1
Revises: 0002
Create Date: 2026-11-26 01:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import datasources.sql

revision = 'takes1'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('take_templates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('creator_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('source_take_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('total_duration_ms', sa.Integer(), nullable=False),
    sa.Column('use_count', sa.Integer(), nullable=False),
    sa.Column('created_at', datasources.sql.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creator_id'], ['users.id'], name=op.f('fk_take_templates_creator_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_take_templates'))
    )
    op.create_index('ix_take_templates_creator', 'take_templates', ['creator_id'], unique=False)
    op.create_index('ix_take_templates_platform_uses', 'take_templates', ['platform', 'use_count', 'id'], unique=False)
    op.create_table('take_trends',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('hashtag', sa.String(length=100), nullable=False),
    sa.Column('originator_take_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('originator_author_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('participant_count', sa.Integer(), nullable=False),
    sa.Column('created_at', datasources.sql.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['originator_author_id'], ['users.id'], name=op.f('fk_take_trends_originator_author_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_take_trends')),
    sa.UniqueConstraint('originator_take_id', name=op.f('uq_take_trends_originator_take_id')),
    sa.UniqueConstraint('platform', 'hashtag', name=op.f('uq_take_trends_platform_hashtag'))
    )
    op.create_index('ix_take_trends_platform_created', 'take_trends', ['platform', 'created_at', 'id'], unique=False)
    op.create_table('take_template_slots',
    sa.Column('template_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('hint', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['template_id'], ['take_templates.id'], name=op.f('fk_take_template_slots_template_id_take_templates'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('template_id', 'position', name=op.f('pk_take_template_slots'))
    )
    op.create_table('takes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('author_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('video_media_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('caption', sa.Text(), nullable=True),
    sa.Column('hashtags', sa.Text(), nullable=False),
    sa.Column('sound_name', sa.String(length=200), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('view_count', sa.Integer(), nullable=False),
    sa.Column('like_count', sa.Integer(), nullable=False),
    sa.Column('comment_count', sa.Integer(), nullable=False),
    sa.Column('share_count', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('trend_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('trend_joined_at', datasources.sql.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', datasources.sql.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_takes_author_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['template_id'], ['take_templates.id'], name=op.f('fk_takes_template_id_take_templates'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['trend_id'], ['take_trends.id'], name=op.f('fk_takes_trend_id_take_trends'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['video_media_id'], ['media.id'], name=op.f('fk_takes_video_media_id_media'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_takes'))
    )
    op.create_index('ix_takes_author_created', 'takes', ['author_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_takes_platform_created', 'takes', ['platform', 'created_at', 'id'], unique=False)
    op.create_index('ix_takes_platform_trend_joined', 'takes', ['platform', 'trend_joined_at'], unique=False)
    op.create_index('ix_takes_template_created', 'takes', ['template_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_takes_trend_joined', 'takes', ['trend_id', 'trend_joined_at', 'id'], unique=False)
    op.create_table('behind_the_takes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('take_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tools', sa.Text(), nullable=False),
    sa.Column('created_at', datasources.sql.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['take_id'], ['takes.id'], name=op.f('fk_behind_the_takes_take_id_takes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_behind_the_takes')),
    sa.UniqueConstraint('take_id', name=op.f('uq_behind_the_takes_take_id'))
    )
    op.create_table('take_likes',
    sa.Column('take_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', datasources.sql.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['take_id'], ['takes.id'], name=op.f('fk_take_likes_take_id_takes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_take_likes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('take_id', 'user_id', name=op.f('pk_take_likes'))
    )
    op.create_index('ix_take_likes_user', 'take_likes', ['user_id', 'created_at'], unique=False)
    op.create_table('take_views',
    sa.Column('take_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('viewer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_counted_at', datasources.sql.UTCDateTime(timezone=True), nullable=False),
    sa.Column('counted_views', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['take_id'], ['takes.id'], name=op.f('fk_take_views_take_id_takes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['viewer_id'], ['users.id'], name=op.f('fk_take_views_viewer_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('take_id', 'viewer_id', name=op.f('pk_take_views'))
    )
    op.create_table('behind_the_take_steps',
    sa.Column('behind_the_take_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('media_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['behind_the_take_id'], ['behind_the_takes.id'], name=op.f('fk_behind_the_take_steps_behind_the_take_id_behind_the_takes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['media_id'], ['media.id'], name=op.f('fk_behind_the_take_steps_media_id_media'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('behind_the_take_id', 'position', name=op.f('pk_behind_the_take_steps'))
    )


def downgrade() -> None:
    op.drop_table('behind_the_take_steps')
    op.drop_table('take_views')
    op.drop_index('ix_take_likes_user', table_name='take_likes')
    op.drop_table('take_likes')
    op.drop_table('behind_the_takes')
    op.drop_index('ix_takes_trend_joined', table_name='takes')
    op.drop_index('ix_takes_template_created', table_name='takes')
    op.drop_index('ix_takes_platform_trend_joined', table_name='takes')
    op.drop_index('ix_takes_platform_created', table_name='takes')
    op.drop_index('ix_takes_author_created', table_name='takes')
    op.drop_table('takes')
    op.drop_table('take_template_slots')
    op.drop_index('ix_take_trends_platform_created', table_name='take_trends')
    op.drop_table('take_trends')
    op.drop_index('ix_take_templates_platform_uses', table_name='take_templates')
    op.drop_index('ix_take_templates_creator', table_name='take_templates')
    op.drop_table('take_templates')

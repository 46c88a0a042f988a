"""story interactions: captions, platforms, sticker responses, counters, replies,
highlights and countdowns of the relational StoryStore

Revision ID: 0006_story_interactions
Revises: 0005
Create Date: 2026-11-26 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import datasources.sql

revision = "0006_story_interactions"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _story_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["story_id"], ["stories.id"], name=op.f(f"fk_{table}_story_id_stories"), ondelete="CASCADE"
    )


def upgrade() -> None:
    # Stories stored before this revision get a platform; the default is dropped
    # again where the database can (SQLite cannot drop a column default in place,
    # and needs one to add a NOT NULL column; the store always sets the platform).
    op.add_column(
        "stories",
        sa.Column("platform", sa.String(length=16), nullable=False, server_default="socialink"),
    )
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("stories", "platform", server_default=None)
    op.add_column("stories", sa.Column("caption", sa.Text(), nullable=True))
    op.add_column("stories", sa.Column("add_yours_origin_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_stories_add_yours_origin_id", "stories", ["add_yours_origin_id"], unique=False
    )
    op.create_index("ix_stories_expires_at", "stories", ["expires_at"], unique=False)
    op.create_index("ix_stories_media_id", "stories", ["media_id"], unique=False)
    op.create_index(
        "ix_story_views_story_viewed",
        "story_views",
        ["story_id", "viewed_at", "viewer_id"],
        unique=False,
    )

    op.create_table(
        "story_responses",
        sa.Column("story_id", BigId, nullable=False),
        sa.Column("sticker_index", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("option", sa.Integer(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("created_at", datasources.sql.UTCDateTime(timezone=True), nullable=False),
        _story_fk("story_responses"),
        sa.PrimaryKeyConstraint(
            "story_id", "sticker_index", "user_id", name=op.f("pk_story_responses")
        ),
    )
    op.create_index(
        "ix_story_responses_sticker_created",
        "story_responses",
        ["story_id", "sticker_index", "created_at", "user_id"],
        unique=False,
    )
    op.create_index(
        "ix_story_responses_user_story", "story_responses", ["user_id", "story_id"], unique=False
    )

    op.create_table(
        "story_counters",
        sa.Column("story_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        _story_fk("story_counters"),
        sa.PrimaryKeyConstraint("story_id", "name", name=op.f("pk_story_counters")),
    )

    op.create_table(
        "story_replies",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("story_id", BigId, nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", datasources.sql.UTCDateTime(timezone=True), nullable=False),
        _story_fk("story_replies"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_story_replies")),
    )
    op.create_index(
        "ix_story_replies_story_created",
        "story_replies",
        ["story_id", "created_at", "id"],
        unique=False,
    )

    op.create_table(
        "story_highlights",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("cover_media_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", datasources.sql.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_story_highlights")),
    )
    op.create_index(
        "ix_story_highlights_owner_created",
        "story_highlights",
        ["owner_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_story_highlights_cover_media_id", "story_highlights", ["cover_media_id"], unique=False
    )

    op.create_table(
        "story_highlight_items",
        sa.Column("highlight_id", BigId, nullable=False),
        sa.Column("story_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["highlight_id"],
            ["story_highlights.id"],
            name=op.f("fk_story_highlight_items_highlight_id_story_highlights"),
            ondelete="CASCADE",
        ),
        _story_fk("story_highlight_items"),
        sa.PrimaryKeyConstraint("highlight_id", "story_id", name=op.f("pk_story_highlight_items")),
    )
    op.create_index(
        "ix_story_highlight_items_story_id", "story_highlight_items", ["story_id"], unique=False
    )

    op.create_table(
        "story_countdowns",
        sa.Column("story_id", BigId, nullable=False),
        sa.Column("sticker_index", sa.Integer(), nullable=False),
        sa.Column("ends_at", datasources.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", datasources.sql.UTCDateTime(timezone=True), nullable=True),
        _story_fk("story_countdowns"),
        sa.PrimaryKeyConstraint("story_id", "sticker_index", name=op.f("pk_story_countdowns")),
    )
    op.create_index("ix_story_countdowns_ends_at", "story_countdowns", ["ends_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_story_countdowns_ends_at", table_name="story_countdowns")
    op.drop_table("story_countdowns")
    op.drop_index("ix_story_highlight_items_story_id", table_name="story_highlight_items")
    op.drop_table("story_highlight_items")
    op.drop_index("ix_story_highlights_cover_media_id", table_name="story_highlights")
    op.drop_index("ix_story_highlights_owner_created", table_name="story_highlights")
    op.drop_table("story_highlights")
    op.drop_index("ix_story_replies_story_created", table_name="story_replies")
    op.drop_table("story_replies")
    op.drop_table("story_counters")
    op.drop_index("ix_story_responses_user_story", table_name="story_responses")
    op.drop_index("ix_story_responses_sticker_created", table_name="story_responses")
    op.drop_table("story_responses")
    op.drop_index("ix_story_views_story_viewed", table_name="story_views")
    op.drop_index("ix_stories_media_id", table_name="stories")
    op.drop_index("ix_stories_expires_at", table_name="stories")
    op.drop_index("ix_stories_add_yours_origin_id", table_name="stories")
    # Plain DROP COLUMN (SQLite >= 3.35): a batch copy would drop and recreate
    # `stories`, cascading to its views when foreign keys are on.
    op.drop_column("stories", "add_yours_origin_id")
    op.drop_column("stories", "caption")
    op.drop_column("stories", "platform")

"""messaging: calls and encrypted attachments

Revision ID: 0011_messaging_calls
Revises: 0010_messaging_keys
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import datasources.sql

revision = "0011_messaging_calls"
down_revision = "0010_messaging_keys"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "messaging_calls",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("conversation_id", BIG_ID, nullable=False),
        sa.Column("caller_id", BIG_ID, nullable=False),
        sa.Column("caller_device_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("started_at", datasources.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", datasources.sql.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", datasources.sql.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["caller_id"],
            ["users.id"],
            name=op.f("fk_messaging_calls_caller_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["messaging_conversations.id"],
            name=op.f("fk_messaging_calls_conversation_id_messaging_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_calls")),
    )
    with op.batch_alter_table("messaging_calls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_calls_ringing", ["ended_at", "answered_at", "started_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_calls_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "messaging_attachments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("uploader_id", BIG_ID, nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", datasources.sql.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", datasources.sql.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["uploader_id"],
            ["users.id"],
            name=op.f("fk_messaging_attachments_uploader_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_attachments")),
    )
    with op.batch_alter_table("messaging_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messaging_attachments_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("messaging_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_attachments_expires_at"))
    op.drop_table("messaging_attachments")
    with op.batch_alter_table("messaging_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_calls_conversation_id"))
        batch_op.drop_index("ix_messaging_calls_ringing")
    op.drop_table("messaging_calls")

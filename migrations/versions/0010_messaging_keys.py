"""messaging: one-time prekeys and MLS key packages

Revision ID: 0010_messaging_keys
Revises: 0009_messaging
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import datasources.sql

revision = "0010_messaging_keys"
down_revision = "0009_messaging"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "messaging_one_time_prekeys",
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id", "device_id"],
            ["messaging_devices.user_id", "messaging_devices.device_id"],
            name=op.f("fk_messaging_one_time_prekeys_user_id_messaging_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "device_id", "key_id", name=op.f("pk_messaging_one_time_prekeys")
        ),
    )
    op.create_table(
        "messaging_key_packages",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("key_package", sa.LargeBinary(), nullable=False),
        sa.Column("last_resort", sa.Boolean(), nullable=False),
        sa.Column("created_at", datasources.sql.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id", "device_id"],
            ["messaging_devices.user_id", "messaging_devices.device_id"],
            name=op.f("fk_messaging_key_packages_user_id_messaging_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_key_packages")),
    )
    with op.batch_alter_table("messaging_key_packages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_key_packages_device",
            ["user_id", "device_id", "last_resort", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messaging_key_packages", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_key_packages_device")
    op.drop_table("messaging_key_packages")
    op.drop_table("messaging_one_time_prekeys")

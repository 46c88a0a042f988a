"""Tables of the key directory: one-time prekeys and MLS key packages.

Both are consumed: a claim deletes the row it hands out (in the claiming
transaction), so a key given to one claimer is never given to another. An MLS
last-resort key package (`last_resort`) is the exception: it is handed out when a
device has no other package left and is never deleted by a claim.

The device's signed prekey and KEM last-resort prekey are columns of
`messaging_devices` (datasources/messaging/tables.py): a device has exactly one of
each at a time, replaced on upload and never consumed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKeyConstraint, Index, Integer, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from datasources.sql import Base, BigId, UTCDateTime

_DEVICE = (["user_id", "device_id"], ["messaging_devices.user_id", "messaging_devices.device_id"])


class OneTimePreKeyRow(Base):
    __tablename__ = "messaging_one_time_prekeys"
    __table_args__ = (ForeignKeyConstraint(*_DEVICE, ondelete="CASCADE"),)

    user_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)


class KeyPackageRow(Base):
    __tablename__ = "messaging_key_packages"
    __table_args__ = (
        ForeignKeyConstraint(*_DEVICE, ondelete="CASCADE"),
        Index("ix_messaging_key_packages_device", "user_id", "device_id", "last_resort", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId)
    device_id: Mapped[int] = mapped_column(Integer)
    key_package: Mapped[bytes] = mapped_column(LargeBinary)
    last_resort: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

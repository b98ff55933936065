"""Retention: an agency's own retention period; when a campaign's personal data was purged

Phone numbers stay String(20): a purged number is stored as "h:" + 18 hex digits of its
HMAC (core/pseudonym.py), which fits.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 16:00:00
"""
import sqlalchemy as sa
from alembic import op

import ivr_service.persistence.models

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retention_days', sa.Integer(), nullable=True))
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purged_at', ivr_service.persistence.models.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('purged_at')
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.drop_column('retention_days')

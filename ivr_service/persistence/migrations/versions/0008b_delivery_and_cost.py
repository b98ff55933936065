"""delivery state machine and cost: messages keep the provider's raw status and their price

Revision ID: 0008b
Revises: 0007
Create Date: 2026-12-02 09:40:00.000000

The message status column is a plain string (not a native enum), so the new "expired"
state needs no schema change.
"""
import sqlalchemy as sa
from alembic import op

revision = '0008b'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raw_status', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('price', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('price')
        batch_op.drop_column('raw_status')

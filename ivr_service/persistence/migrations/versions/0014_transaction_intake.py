"""The transaction intake: reported dossiers accepted at once and decided by the worker
in batches (services/intake.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 06:10:00
"""
import sqlalchemy as sa
from alembic import op

import ivr_service.persistence.models

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('transaction_intake',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('caller_kind', sa.String(length=10), nullable=False),
    sa.Column('caller_id', sa.Integer(), nullable=False),
    sa.Column('caller_name', sa.String(length=200), nullable=False),
    sa.Column('caller_nodes', sa.JSON(), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('record', sa.JSON(), nullable=True),
    sa.Column('phone_e164', sa.String(length=20), nullable=True),
    sa.Column('processed_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transaction_intake'))
    )
    with op.batch_alter_table('transaction_intake', schema=None) as batch_op:
        batch_op.create_index('ix_transaction_intake_queued', ['id'], unique=False,
                              postgresql_where=sa.text('processed_at IS NULL'),
                              sqlite_where=sa.text('processed_at IS NULL'))
        batch_op.create_index('ix_transaction_intake_processed', ['processed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_transaction_intake_phone_e164'), ['phone_e164'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('transaction_intake', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transaction_intake_phone_e164'))
        batch_op.drop_index('ix_transaction_intake_processed')
        batch_op.drop_index('ix_transaction_intake_queued')
    op.drop_table('transaction_intake')

"""inbound messages: SMS citizens send (opt-out keywords)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import ivr_service.persistence.models

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbound_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('provider_id', sa.String(length=64), nullable=False),
    sa.Column('phone_e164', sa.String(length=20), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('received_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('reply_message_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['reply_message_id'], ['messages.id'],
                            name=op.f('fk_inbound_messages_reply_message_id_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages')),
    sa.UniqueConstraint('provider_id', name=op.f('uq_inbound_messages_provider_id'))
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_messages_phone_e164'), ['phone_e164'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_phone_e164'))

    op.drop_table('inbound_messages')

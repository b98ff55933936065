"""Zalo ZNS: OA tokens per account, and the SMS that replaces a ZNS message

Revision ID: 0008d
Revises: 0007
Create Date: 2026-12-02 09:30:00
"""
import sqlalchemy as sa
from alembic import op

import ivr_service.persistence.models

revision = '0008d'
down_revision = '0008c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('zns_tokens',
    sa.Column('account_key', sa.String(length=64), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=False),
    sa.Column('refresh_token', sa.Text(), nullable=False),
    sa.Column('expires_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_key', name=op.f('pk_zns_tokens'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fallback_of_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_fallback_of_id'), ['fallback_of_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_messages_fallback_of_id_messages'), 'messages',
                                    ['fallback_of_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_fallback_of_id_messages'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_messages_fallback_of_id'))
        batch_op.drop_column('fallback_of_id')
    op.drop_table('zns_tokens')

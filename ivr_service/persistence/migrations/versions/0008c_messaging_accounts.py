"""messaging accounts per agency, programme routing, the account of each message

Revision ID: 0008c
Revises: 0007
Create Date: 2026-12-02 09:30:00
"""
import sqlalchemy as sa
from alembic import op

import ivr_service.persistence.models

revision = '0008c'
down_revision = '0008b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('messaging_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('sender', sa.String(length=40), nullable=True),
    sa.Column('base_url', sa.String(length=200), nullable=True),
    sa.Column('credentials', sa.JSON(), nullable=False),
    sa.Column('callback_secret', sa.String(length=64), nullable=False),
    sa.Column('prices', sa.JSON(), nullable=False),
    sa.Column('trusted_delivery', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('created_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_messaging_accounts_agency_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messaging_accounts'))
    )
    with op.batch_alter_table('messaging_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messaging_accounts_agency_id'), ['agency_id'], unique=False)

    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routing', sa.JSON(), nullable=True))

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_account_id'), ['account_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_messages_account_id_messaging_accounts'), 'messaging_accounts',
                                    ['account_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_account_id_messaging_accounts'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_messages_account_id'))
        batch_op.drop_column('account_id')

    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.drop_column('routing')

    with op.batch_alter_table('messaging_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messaging_accounts_agency_id'))

    op.drop_table('messaging_accounts')

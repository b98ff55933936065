"""campaign engine: schedule, channel plan, leases, pacing, number cap

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

import ivr_service.persistence.models

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('number_calls',
    sa.Column('phone_e164', sa.String(length=20), nullable=False),
    sa.Column('last_call_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('phone_e164', name=op.f('pk_number_calls'))
    )
    op.create_table('pacing_buckets',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('updated_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_pacing_buckets'))
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_until', ivr_service.persistence.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index('ix_attempts_campaign_status', ['campaign_id', 'status'], unique=False)
        batch_op.create_index('ix_attempts_campaign_created', ['campaign_id', 'created_at'], unique=False)
        batch_op.create_index('ix_attempts_status_lease', ['status', 'lease_until'], unique=False)

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('starts_at', ivr_service.persistence.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('ends_at', ivr_service.persistence.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('target_completes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('channel_plan', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('spread', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('rates', sa.JSON(), nullable=True))

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=10), nullable=False, server_default='voice'))
        batch_op.add_column(sa.Column('channel_attempts', sa.Integer(), nullable=False, server_default='0'))



def downgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('channel_attempts')
        batch_op.drop_column('channel')

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('rates')
        batch_op.drop_column('spread')
        batch_op.drop_column('channel_plan')
        batch_op.drop_column('target_completes')
        batch_op.drop_column('ends_at')
        batch_op.drop_column('starts_at')

    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_attempts_status_lease')
        batch_op.drop_index('ix_attempts_campaign_created')
        batch_op.drop_index('ix_attempts_campaign_status')
        batch_op.drop_column('lease_until')

    op.drop_table('pacing_buckets')
    op.drop_table('number_calls')

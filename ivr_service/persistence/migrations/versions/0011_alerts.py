"""Alerts: a unit's dissatisfied share above 25 % on one criterion in one period

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 15:30:00
"""
import sqlalchemy as sa
from alembic import op

import ivr_service.persistence.models

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=20), nullable=False),
    sa.Column('questionnaire_key', sa.String(length=80), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('n_dissatisfied', sa.Integer(), nullable=False),
    sa.Column('share', sa.Float(), nullable=False),
    sa.Column('created_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('email_sent_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('email_error', sa.String(length=500), nullable=True),
    sa.Column('webhook_sent_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('webhook_error', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_alerts_agency_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('agency_id', 'item_id', 'period', name='uq_alerts_agency_item_period')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_agency_id'), ['agency_id'], unique=False)
        batch_op.create_index('ix_alerts_created_at', ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_created_at')
        batch_op.drop_index(batch_op.f('ix_alerts_agency_id'))
    op.drop_table('alerts')

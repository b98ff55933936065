"""progress tallies kept by triggers; job runs for once-per-period cluster jobs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

import ivr_service.persistence.models
from ivr_service.persistence import tallies

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('progress_deltas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_progress_deltas'))
    )
    with op.batch_alter_table('progress_deltas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_progress_deltas_campaign_id'), ['campaign_id'], unique=False)
    op.create_table('job_runs',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=20), nullable=False),
    sa.Column('started_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('name', 'period', name=op.f('pk_job_runs'))
    )
    conn = op.get_bind()
    tallies.create_triggers(conn)
    tallies.recount(conn)


def downgrade() -> None:
    tallies.drop_triggers(op.get_bind())
    op.drop_table('job_runs')
    with op.batch_alter_table('progress_deltas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_progress_deltas_campaign_id'))
    op.drop_table('progress_deltas')

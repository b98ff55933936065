"""Complete interviews of a campaign by the time they ended (the console's monitor)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 13:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

COMPLETE = sa.text("status = 'complete'")


def upgrade() -> None:
    # Partial: the monitor counts only completes, a fraction of a campaign's interviews.
    op.create_index('ix_interviews_campaign_complete_ended', 'interviews', ['campaign_id', 'ended_at'],
                    unique=False, postgresql_where=COMPLETE, sqlite_where=COMPLETE)


def downgrade() -> None:
    op.drop_index('ix_interviews_campaign_complete_ended', table_name='interviews')

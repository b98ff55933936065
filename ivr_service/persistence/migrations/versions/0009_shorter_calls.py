"""Spoken answers and the agency's line at the end of a call

Revision ID: 0009
Revises: 0008d
Create Date: 2026-12-02 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008d'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('speech_input', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('hotline', sa.String(length=20), nullable=True))
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heard', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('confidence', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.drop_column('confidence')
        batch_op.drop_column('heard')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('hotline')
        batch_op.drop_column('speech_input')

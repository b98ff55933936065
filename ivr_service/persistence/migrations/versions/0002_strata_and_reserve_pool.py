"""strata and reserve pool

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('strata',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('agency', sa.String(length=200), nullable=False),
    sa.Column('field', sa.String(length=200), nullable=False),
    sa.Column('frame_rows', sa.Integer(), nullable=False),
    sa.Column('eligible', sa.Integer(), nullable=False),
    sa.Column('excluded', sa.JSON(), nullable=False),
    sa.Column('drawn', sa.Integer(), nullable=False),
    sa.Column('reserve', sa.Integer(), nullable=False),
    sa.Column('weight', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_strata_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strata')),
    sa.UniqueConstraint('campaign_id', 'agency', 'field', name='uq_strata_campaign_agency_field')
    )
    with op.batch_alter_table('strata', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_strata_campaign_id'), ['campaign_id'], unique=False)

    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sample_rule', sa.JSON(), nullable=True))

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_kind', sa.String(length=10), nullable=False,
                                      server_default=sa.text("'mobile'")))
        batch_op.add_column(sa.Column('carrier', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('stratum_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('replicate', sa.Integer(), nullable=False, server_default=sa.text('0')))
        batch_op.create_index(batch_op.f('ix_contacts_stratum_id'), ['stratum_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_contacts_stratum_id_strata'), 'strata', ['stratum_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_contacts_stratum_id_strata'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_contacts_stratum_id'))
        batch_op.drop_column('replicate')
        batch_op.drop_column('stratum_id')
        batch_op.drop_column('carrier')
        batch_op.drop_column('phone_kind')

    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.drop_column('sample_rule')

    with op.batch_alter_table('strata', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_strata_campaign_id'))

    op.drop_table('strata')

"""post-transaction surveys: transaction feed, programmes, messages, survey links, QR posters

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 08:18:10.666464
"""
import sqlalchemy as sa
from alembic import op

import ivr_service.persistence.models
from ivr_service.persistence import tallies


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('number_messages',
    sa.Column('phone_e164', sa.String(length=20), nullable=False),
    sa.Column('last_message_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('phone_e164', name=op.f('pk_number_messages'))
    )
    op.create_table('programmes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('questionnaire_key', sa.String(length=80), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('share_mode', sa.String(length=10), nullable=False),
    sa.Column('share', sa.Float(), nullable=True),
    sa.Column('expected_response', sa.Float(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('delay_minutes', sa.Integer(), nullable=False),
    sa.Column('recent_days', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('window', sa.JSON(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('template', sa.Text(), nullable=False),
    sa.Column('reminder_template', sa.Text(), nullable=True),
    sa.Column('max_segments', sa.Integer(), nullable=False),
    sa.Column('sender', sa.String(length=20), nullable=True),
    sa.Column('public_host', sa.String(length=200), nullable=False),
    sa.Column('link_days', sa.Integer(), nullable=False),
    sa.Column('reminder_hours', sa.Integer(), nullable=True),
    sa.Column('channel_plan', sa.JSON(), nullable=False),
    sa.Column('created_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_programmes_agency_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programmes'))
    )
    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_programmes_agency_id'), ['agency_id'], unique=False)

    op.create_table('qr_posters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('questionnaire_key', sa.String(length=80), nullable=False),
    sa.Column('public_host', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('created_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_qr_posters_agency_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qr_posters')),
    sa.UniqueConstraint('code', name=op.f('uq_qr_posters_code'))
    )
    with op.batch_alter_table('qr_posters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qr_posters_agency_id'), ['agency_id'], unique=False)

    op.create_table('qr_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('poster_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=200), nullable=True),
    sa.Column('procedure', sa.String(length=200), nullable=True),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('started_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['poster_id'], ['qr_posters.id'], name=op.f('fk_qr_responses_poster_id_qr_posters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qr_responses')),
    sa.UniqueConstraint('token', name=op.f('uq_qr_responses_token'))
    )
    with op.batch_alter_table('qr_responses', schema=None) as batch_op:
        batch_op.create_index('ix_qr_responses_poster_started', ['poster_id', 'started_at'], unique=False)

    op.create_table('transactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=80), nullable=False),
    sa.Column('procedure', sa.String(length=200), nullable=True),
    sa.Column('field', sa.String(length=200), nullable=True),
    sa.Column('phone_e164', sa.String(length=20), nullable=False),
    sa.Column('officer', sa.String(length=200), nullable=True),
    sa.Column('returned_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=False),
    sa.Column('decided_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_transactions_agency_id_agencies')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_transactions_contact_id_contacts')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_transactions_programme_id_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transactions')),
    sa.UniqueConstraint('agency_id', 'code', name='uq_transactions_agency_code')
    )
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.create_index('ix_transactions_agency_returned', ['agency_id', 'returned_at'], unique=False)
        batch_op.create_index('ix_transactions_phone_decided', ['phone_e164', 'decided_at'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('phone_e164', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('encoding', sa.String(length=8), nullable=False),
    sa.Column('segments', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'accepted', 'sent', 'delivered', 'undelivered', 'failed', 'canceled', name='message_status', native_enum=False, length=20), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('provider_id', sa.String(length=64), nullable=True),
    sa.Column('error_code', sa.String(length=20), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('lease_until', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], name=op.f('fk_messages_attempt_id_attempts')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_messages_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('provider_id', name=op.f('uq_messages_provider_id')),
    sa.UniqueConstraint('token', name=op.f('uq_messages_token'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_attempt_id'), ['attempt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index('ix_messages_phone_created', ['phone_e164', 'created_at'], unique=False)
        batch_op.create_index('ix_messages_status_lease', ['status', 'lease_until'], unique=False)

    op.create_table('survey_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('created_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('opened_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('opens', sa.Integer(), server_default='0', nullable=False),
    sa.Column('finished_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminded_at', ivr_service.persistence.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], name=op.f('fk_survey_links_attempt_id_attempts')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_survey_links_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_survey_links_contact_id_contacts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_links')),
    sa.UniqueConstraint('attempt_id', name=op.f('uq_survey_links_attempt_id')),
    sa.UniqueConstraint('code', name=op.f('uq_survey_links_code'))
    )
    with op.batch_alter_table('survey_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_links_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_links_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_links_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('programme_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_campaigns_programme_id'), ['programme_id'], unique=False)
        batch_op.create_unique_constraint('uq_campaigns_programme_period', ['programme_id', 'period_start'])
        batch_op.create_foreign_key(batch_op.f('fk_campaigns_programme_id_programmes'), 'programmes', ['programme_id'], ['id'])

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('procedure', sa.String(length=200), nullable=True))

    with op.batch_alter_table('interviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=10), server_default='voice', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('interviews', schema=None) as batch_op:
        batch_op.drop_column('channel')

    # SQLite rebuilds contacts to drop a column, which drops the tally triggers on it.
    tallies.drop_triggers(op.get_bind())
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('procedure')
    tallies.create_triggers(op.get_bind())

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_campaigns_programme_id_programmes'), type_='foreignkey')
        batch_op.drop_constraint('uq_campaigns_programme_period', type_='unique')
        batch_op.drop_index(batch_op.f('ix_campaigns_programme_id'))
        batch_op.drop_column('programme_id')

    with op.batch_alter_table('survey_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_links_expires_at'))
        batch_op.drop_index(batch_op.f('ix_survey_links_contact_id'))
        batch_op.drop_index(batch_op.f('ix_survey_links_campaign_id'))

    op.drop_table('survey_links')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_status_lease')
        batch_op.drop_index('ix_messages_phone_created')
        batch_op.drop_index(batch_op.f('ix_messages_campaign_id'))
        batch_op.drop_index(batch_op.f('ix_messages_attempt_id'))

    op.drop_table('messages')
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_transactions_phone_decided')
        batch_op.drop_index('ix_transactions_agency_returned')

    op.drop_table('transactions')
    with op.batch_alter_table('qr_responses', schema=None) as batch_op:
        batch_op.drop_index('ix_qr_responses_poster_started')

    op.drop_table('qr_responses')
    with op.batch_alter_table('qr_posters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qr_posters_agency_id'))

    op.drop_table('qr_posters')
    with op.batch_alter_table('programmes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_programmes_agency_id'))

    op.drop_table('programmes')
    op.drop_table('number_messages')

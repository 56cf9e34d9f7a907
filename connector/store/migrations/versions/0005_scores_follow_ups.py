"""scores (band, sentiment, themes, redacted comment of each response), follow-ups for detractors and
flags on their new tickets

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scores',
    sa.Column('response_id', sa.Integer(), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('band', sa.String(length=20), nullable=False),
    sa.Column('sentiment', sa.Float(), nullable=True),
    sa.Column('sentiment_label', sa.String(length=10), nullable=True),
    sa.Column('unscored', sa.String(length=100), nullable=True),
    sa.Column('themes', sa.JSON(), nullable=False),
    sa.Column('comment_redacted', sa.Text(), nullable=True),
    sa.Column('scored_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['response_id'], ['responses.id'], name=op.f('fk_scores_response_id_responses')),
    sa.PrimaryKeyConstraint('response_id', name=op.f('pk_scores'))
    )
    op.create_table('follow_ups',
    sa.Column('response_id', sa.Integer(), nullable=False),
    sa.Column('system', sa.String(length=100), nullable=False),
    sa.Column('ticket_id', sa.String(length=200), nullable=False),
    sa.Column('correlation', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('remote_id', sa.String(length=200), nullable=True),
    sa.Column('remote_number', sa.String(length=100), nullable=True),
    sa.Column('detractor_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=300), nullable=True),
    sa.Column('recovery_invitation_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['recovery_invitation_id'], ['invitations.id'],
                            name=op.f('fk_follow_ups_recovery_invitation_id_invitations')),
    sa.ForeignKeyConstraint(['response_id'], ['responses.id'], name=op.f('fk_follow_ups_response_id_responses')),
    sa.PrimaryKeyConstraint('response_id', name=op.f('pk_follow_ups')),
    sa.UniqueConstraint('correlation', name=op.f('uq_follow_ups_correlation'))
    )
    op.create_index('ix_follow_ups_state', 'follow_ups', ['system', 'state'], unique=False)
    op.create_table('flags',
    sa.Column('system', sa.String(length=100), nullable=False),
    sa.Column('ticket_id', sa.String(length=200), nullable=False),
    sa.Column('response_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['response_id'], ['responses.id'], name=op.f('fk_flags_response_id_responses')),
    sa.PrimaryKeyConstraint('system', 'ticket_id', name=op.f('pk_flags'))
    )


def downgrade() -> None:
    op.drop_table('flags')
    op.drop_index('ix_follow_ups_state', table_name='follow_ups')
    op.drop_table('follow_ups')
    op.drop_table('scores')

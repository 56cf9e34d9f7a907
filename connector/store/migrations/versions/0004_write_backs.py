"""write_backs: scores and notes to put on the tickets, retried until done

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('write_backs',
    sa.Column('response_id', sa.Integer(), nullable=False),
    sa.Column('system', sa.String(length=100), nullable=False),
    sa.Column('ticket_id', sa.String(length=200), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('note', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('written_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['response_id'], ['responses.id'], name=op.f('fk_write_backs_response_id_responses')),
    sa.PrimaryKeyConstraint('response_id', name=op.f('pk_write_backs'))
    )
    op.create_index('ix_write_backs_pending', 'write_backs', ['system', 'state'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_write_backs_pending', table_name='write_backs')
    op.drop_table('write_backs')

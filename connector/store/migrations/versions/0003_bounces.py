"""bounces: addresses that cannot receive mail; invitations found by Message-ID (delivery reports)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bounces',
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('address', name=op.f('pk_bounces'))
    )
    op.create_index('ix_invitations_message_id', 'invitations', ['message_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_invitations_message_id', table_name='invitations')
    op.drop_table('bounces')

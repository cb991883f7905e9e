"""jobs: waiting parents and resumable state

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 19:17:47.420756
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waiting', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('state', sa.JSON(), server_default='{}', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('state')
        batch_op.drop_column('waiting')


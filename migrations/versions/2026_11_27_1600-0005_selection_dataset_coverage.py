"""selection: dataset_coverage (directed coverage divergences imported from a matrix)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 16:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dataset_coverage',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('dataset_id', sa.String(length=32), nullable=False),
    sa.Column('reference_id', sa.String(length=32), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('method', sa.String(length=100), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reference_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'reference_id', 'method', name='uq_coverage_pair_method')
    )
    with op.batch_alter_table('dataset_coverage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_coverage_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dataset_coverage_reference_id'), ['reference_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dataset_coverage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_coverage_reference_id'))
        batch_op.drop_index(batch_op.f('ix_dataset_coverage_dataset_id'))

    op.drop_table('dataset_coverage')

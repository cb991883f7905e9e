"""selection: index updated_at of the graph's tables (every rank reads their newest time)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 23:00:00
"""
from __future__ import annotations

from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TABLES = ('models', 'datasets', 'finetune_results', 'dataset_similarity', 'dataset_coverage')


def upgrade() -> None:
    for table in TABLES:
        op.create_index(op.f(f'ix_{table}_updated_at'), table, ['updated_at'], unique=False)


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(op.f(f'ix_{table}_updated_at'), table_name=table)

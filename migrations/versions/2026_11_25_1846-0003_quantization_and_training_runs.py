"""quantization and training runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:46:01.649254
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('quantized_models',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('model_ref', sa.String(length=1000), nullable=False),
    sa.Column('signal', sa.String(length=50), nullable=False),
    sa.Column('avg_weight_bits', sa.Float(), nullable=False),
    sa.Column('weight_bytes_before', sa.BigInteger(), nullable=False),
    sa.Column('weight_bytes_after', sa.Float(), nullable=False),
    sa.Column('bytes_on_disk', sa.BigInteger(), nullable=False),
    sa.Column('quality', sa.JSON(), nullable=False),
    sa.Column('artifact_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id')
    )
    op.create_table('training_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('model_ref', sa.String(length=1000), nullable=False),
    sa.Column('dataset_uri', sa.String(length=1000), nullable=False),
    sa.Column('mode', sa.String(length=40), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('final_val_loss', sa.Float(), nullable=False),
    sa.Column('peak_memory_bytes', sa.BigInteger(), nullable=False),
    sa.Column('median_step_seconds', sa.Float(), nullable=True),
    sa.Column('quality', sa.JSON(), nullable=False),
    sa.Column('artifact_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id')
    )


def downgrade() -> None:
    op.drop_table('training_runs')
    op.drop_table('quantized_models')

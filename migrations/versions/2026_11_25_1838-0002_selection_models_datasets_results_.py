"""selection: models, datasets, results, similarity, graph versions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:38:50.482227
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('uri', sa.String(length=1000), nullable=True),
    sa.Column('size', sa.Float(), nullable=True),
    sa.Column('modality', sa.String(length=50), nullable=False),
    sa.Column('caption_stats', sa.JSON(), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('profile', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('graph_versions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('training_hash', sa.String(length=64), nullable=False),
    sa.Column('predictor', sa.LargeBinary(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('evaluation', sa.JSON(), nullable=True),
    sa.Column('job_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('graph_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_graph_versions_created_at'), ['created_at'], unique=False)

    op.create_table('models',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('ref', sa.String(length=1000), nullable=True),
    sa.Column('family', sa.String(length=200), nullable=True),
    sa.Column('architecture', sa.String(length=200), nullable=True),
    sa.Column('num_parameters', sa.Float(), nullable=True),
    sa.Column('resolution', sa.Float(), nullable=True),
    sa.Column('pretraining_data', sa.String(length=300), nullable=True),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('dataset_similarity',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('dataset_a_id', sa.String(length=32), nullable=False),
    sa.Column('dataset_b_id', sa.String(length=32), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('method', sa.String(length=100), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_a_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['dataset_b_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_a_id', 'dataset_b_id', 'method', name='uq_similarity_pair_method')
    )
    with op.batch_alter_table('dataset_similarity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_similarity_dataset_a_id'), ['dataset_a_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dataset_similarity_dataset_b_id'), ['dataset_b_id'], unique=False)

    op.create_table('finetune_results',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('model_id', sa.String(length=32), nullable=False),
    sa.Column('dataset_id', sa.String(length=32), nullable=False),
    sa.Column('metric', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('higher_is_better', sa.Boolean(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('finetune_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finetune_results_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index('ix_finetune_results_pair', ['model_id', 'dataset_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('finetune_results', schema=None) as batch_op:
        batch_op.drop_index('ix_finetune_results_pair')
        batch_op.drop_index(batch_op.f('ix_finetune_results_dataset_id'))

    op.drop_table('finetune_results')
    with op.batch_alter_table('dataset_similarity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_similarity_dataset_b_id'))
        batch_op.drop_index(batch_op.f('ix_dataset_similarity_dataset_a_id'))

    op.drop_table('dataset_similarity')
    op.drop_table('models')
    with op.batch_alter_table('graph_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_graph_versions_created_at'))

    op.drop_table('graph_versions')
    op.drop_table('datasets')

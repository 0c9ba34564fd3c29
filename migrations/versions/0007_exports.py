"""Exports: log of exports taken, monthly recipients and sendings; email attachments by reference

Revision ID: 0007
Revises: 0002
Create Date: 2026-11-28 10:14:08.546958
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('export_recipients',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('formats', sa.String(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_export_recipients_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_recipients')),
    sa.UniqueConstraint('org_id', 'email', name=op.f('uq_export_recipients_org_id_email'))
    )
    op.create_table('export_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('emails', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_export_runs_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_runs')),
    sa.UniqueConstraint('org_id', 'period', name=op.f('uq_export_runs_org_id_period'))
    )
    op.create_table('export_logs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('format', sa.String(length=20), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rows', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('taken_by', sa.String(length=254), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('taken_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_export_logs_org_id_organisations')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_export_logs_site_id_sites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_logs'))
    )
    with op.batch_alter_table('export_logs', schema=None) as batch_op:
        batch_op.create_index('ix_export_logs_taken_at', ['taken_at'], unique=False)

    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachments', sa.Text(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('emails', schema=None) as batch_op:
        batch_op.drop_column('attachments')

    with op.batch_alter_table('export_logs', schema=None) as batch_op:
        batch_op.drop_index('ix_export_logs_taken_at')

    op.drop_table('export_logs')
    op.drop_table('export_runs')
    op.drop_table('export_recipients')

"""job leases (a running job's worker renews it; an expired one is run again) and the source
host of each linkback log row (the caps on pending verifications count by it)

Revision ID: 7c4e2a91d5b3
Revises: 18835c230381
Create Date: 2026-12-03 12:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c4e2a91d5b3'
down_revision = '18835c230381'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('linkback_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_host', sa.String(length=255), server_default='', nullable=False))
        batch_op.create_index('ix_linkback_log_pending_host', ['outcome', 'source_host'], unique=False)
        batch_op.create_index('ix_linkback_log_pending_ip', ['outcome', 'client_ip'], unique=False)
    # Pingback and trackback claims had no job before this release: one left verifying by a
    # process that died would wait for ever. They end here, refused, as their verification did.
    op.execute("DELETE FROM comment WHERE status = 'verifying'")
    op.execute("UPDATE linkback_log SET outcome = 'refused', fault_code = 0, "
               "message = 'The verification was cut short (the process stopped) before this upgrade.' "
               "WHERE outcome = 'verifying' AND protocol IN ('pingback', 'trackback')")


def downgrade():
    with op.batch_alter_table('linkback_log', schema=None) as batch_op:
        batch_op.drop_index('ix_linkback_log_pending_ip')
        batch_op.drop_index('ix_linkback_log_pending_host')
        batch_op.drop_column('source_host')
    with op.batch_alter_table('job_record', schema=None) as batch_op:
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('lease_owner')

"""drop legacy notes and the audit log

Revision ID: 4d5e6f7a8b9c
Revises: 3c4d5e6f7a8b
Create Date: 2025-02-04 09:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '4d5e6f7a8b9c'
down_revision: Union[str, Sequence[str], None] = '3c4d5e6f7a8b'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # Destroys every customer's notes: migration-guard refuses this (customers is protected).
    with op.batch_alter_table('customers') as batch_op:
        batch_op.drop_column('legacy_notes')
    # audit_log is not protected, so dropping it is reported as a warning.
    op.drop_table('audit_log')


def downgrade() -> None:
    """Downgrade schema."""
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('event', sa.String(length=200), nullable=False),
    )
    with op.batch_alter_table('customers') as batch_op:
        batch_op.add_column(sa.Column('legacy_notes', sa.Text(), nullable=True))

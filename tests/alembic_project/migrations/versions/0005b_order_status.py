"""branch b: order status

Revision ID: 0005b_order_status
Revises: 0004_cleanup_orders
Create Date: 2025-01-05 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005b_order_status'
down_revision: Union[str, Sequence[str], None] = '0004_cleanup_orders'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('orders', sa.Column('status', sa.String(length=20), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column('orders', 'status')

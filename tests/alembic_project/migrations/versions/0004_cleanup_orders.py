"""clean up orders with raw SQL

Revision ID: 0004_cleanup_orders
Revises: 0003_batch_drop_nickname
Create Date: 2025-01-04 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004_cleanup_orders'
down_revision: Union[str, Sequence[str], None] = '0003_batch_drop_nickname'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(
        """
        UPDATE orders SET note = 'migrated; see ticket 42' WHERE note IS NULL;
        -- every order is re-imported below
        DELETE FROM orders;
        INSERT INTO orders (id, user_id, total) SELECT id, id, 0 FROM users
        """
    )


def downgrade() -> None:
    """Downgrade schema."""
    pass

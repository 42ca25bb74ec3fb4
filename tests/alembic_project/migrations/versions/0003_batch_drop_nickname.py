"""drop users.nickname and widen users.email in a batch (SQLite)

Revision ID: 0003_batch_drop_nickname
Revises: 0002_add_nickname
Create Date: 2025-01-03 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003_batch_drop_nickname'
down_revision: Union[str, Sequence[str], None] = '0002_add_nickname'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('nickname')
        batch_op.alter_column(
            'email', existing_type=sa.String(length=255), type_=sa.String(length=320)
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('users') as batch_op:
        batch_op.alter_column(
            'email', existing_type=sa.String(length=320), type_=sa.String(length=255)
        )
        batch_op.add_column(sa.Column('nickname', sa.String(length=50), nullable=True))

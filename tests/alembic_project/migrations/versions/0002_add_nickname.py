"""add users.nickname, rename users.name to full_name

Revision ID: 0002_add_nickname
Revises: 0001_create_tables
Create Date: 2025-01-02 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002_add_nickname'
down_revision: Union[str, Sequence[str], None] = '0001_create_tables'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('users', sa.Column('nickname', sa.String(length=50), nullable=True))
    op.alter_column(
        'users',
        'name',
        new_column_name='full_name',
        existing_type=sa.String(length=50),
        existing_nullable=True,
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.alter_column('users', 'full_name', new_column_name='name')
    op.drop_column('users', 'nickname')

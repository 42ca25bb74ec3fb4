"""``python -m migration_guard``."""

from migration_guard.cli import main

if __name__ == "__main__":
    main()

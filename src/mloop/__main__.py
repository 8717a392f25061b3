"""``python -m mloop``: the same as the ``mloop`` command (for child processes started by path to Python)."""

from mloop.cli.app import main

if __name__ == "__main__":
    main()

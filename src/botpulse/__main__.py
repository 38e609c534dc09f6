"""``python -m botpulse``: the command line."""

from botpulse.cli import main

if __name__ == "__main__":
    main()

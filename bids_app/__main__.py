"""Allow ``python -m bids_app``."""

from bids_app.cli.run import main

if __name__ == "__main__":
    main()

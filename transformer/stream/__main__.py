"""``python -m transformer.stream run|publish``: see ``transformer.stream.cli``."""

from transformer.stream.cli import main

if __name__ == "__main__":
    main()

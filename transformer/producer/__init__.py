"""Data producers: feature rows in, fresh predictions out.

``core`` (the logic: ``Producer``), ``http`` (the ``POST /producer/v1/write`` route), ``cli``
(``python -m transformer.producer FILE...``, ``post_rows``).
"""

from transformer.producer.cli import main, post_rows, read_rows
from transformer.producer.core import Producer

__all__ = ["Producer", "main", "post_rows", "read_rows"]

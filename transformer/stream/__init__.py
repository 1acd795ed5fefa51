"""Stream inference: user-activity events in, fresh features and predictions out.

``python -m transformer.stream run`` reads a Redis Stream with a consumer group, folds each
batch per user into the ``user_data`` features (``fold``), writes them in Feast's Redis format,
rescores the affected users in one model call and writes their predictions where the
transformer's ``cached`` mode serves them, then appends decisions to an output stream and
acknowledges. See docs/stream.md.

One module per concept: ``events`` (schema), ``fold`` (how events move features, shared with
the offline history in ``predictor.jobs.datagen``), ``source`` (the bus), ``sink`` (the online
store and output stream), ``scoring`` (the model call), ``worker`` (the loop), ``metrics``,
``settings``, ``cli``.
"""

"""Live monitoring of the transformer: input and score drift against the model's baseline
(``drift``), model quality from late outcomes (``quality``), their Prometheus collector and
JSON view (``views``), wired by ``build`` from the settings."""

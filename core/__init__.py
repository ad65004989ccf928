"""Pure domain logic: models, parsing, positions, prices, detectors. No I/O."""

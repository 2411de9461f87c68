"""Reading and scoring answers: extractors, answer types, metrics, scorers, profiles, gold, policies."""

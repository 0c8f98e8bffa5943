"""Custom NLU pipeline components."""

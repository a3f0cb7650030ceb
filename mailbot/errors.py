"""Errors whose message is already Vietnamese, written for the person at the terminal."""

from __future__ import annotations


class OperatorError(Exception):
    """A failure the CLI shows as it is (exit status 1): the message says what to do."""

"""The python -m ensemble commands, one module per command, and their shared flag helpers."""

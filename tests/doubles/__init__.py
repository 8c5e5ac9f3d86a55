"""Test doubles: a simulated board and a fake PPK2, each speaking its real wire format on a pty.

They live under tests/ so the installed package ships no fakes; tests import them as ``doubles.*``
(``tests/`` is on pytest's ``pythonpath``).
"""

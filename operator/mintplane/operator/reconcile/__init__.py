"""Reconcile logic per kind, as plain async functions of a spec and the clients they need.

Kopf handlers in :mod:`mintplane.operator.handlers` only unpack Kopf's arguments, call these, and write the
returned status; everything here is testable without an operator loop.
"""

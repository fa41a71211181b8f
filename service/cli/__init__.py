"""`nilecare`: one command per process of the service image, and the operators' commands."""

from service.cli import operations, processes
from service.cli.app import app, main

__all__ = ["app", "main", "operations", "processes"]

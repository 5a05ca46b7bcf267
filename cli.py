"""Placeholder; the Typer app is being written."""
import typer

app = typer.Typer()

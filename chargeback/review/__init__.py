"""Reviewing charges before they bill: check rules against the data, explain one contact, diff two rule sets."""

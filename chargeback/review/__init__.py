"""Reviewing charges before they bill.

Check rules against the data, explain one contact, diff two rule sets.
"""

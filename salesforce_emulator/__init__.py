"""A Salesforce REST API emulator, faithful enough that simple-salesforce cannot tell it from an org.

Its own package, with no Django: `python -m salesforce_emulator --help`.
"""

"""A throwaway Django project that talks to the emulator through django-salesforce, unmodified:
the Salesforce database backend for Django's ORM, only pointed at the emulator's URL and CA."""

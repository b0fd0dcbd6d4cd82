"""Trigram indexes for the people search on PostgreSQL (name, email, company)."""

from django.db import migrations

from oppsync_site.search_indexes import trigram_search_indexes


class Migration(migrations.Migration):
    dependencies = [("people", "0002_person_person_list_idx")]

    operations = trigram_search_indexes(
        "people_person", "person", ["first_name", "last_name", "email", "company"]
    )

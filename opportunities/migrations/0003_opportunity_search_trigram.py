"""Trigram indexes for the opportunity search on PostgreSQL (name, account name)."""

from django.db import migrations

from oppsync_site.search_indexes import trigram_search_indexes


class Migration(migrations.Migration):
    dependencies = [("opportunities", "0002_syncobjectrun_expected_count_and_more")]

    operations = trigram_search_indexes("opportunities_opportunity", "opportunity", ["name", "account_name"])

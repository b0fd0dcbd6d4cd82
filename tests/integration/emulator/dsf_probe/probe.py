"""Run by the conformance test in a process of its own: queries, paging and describe through
django-salesforce. Prints one JSON object of what it saw."""

import datetime as dt
import json
import os
import sys

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.emulator.dsf_probe.settings")
    django.setup()
    from django.db import connections

    from .models import Contact, Opportunity, OpportunityContactRole

    tag = sys.argv[1]
    seen: dict[str, object] = {}
    tagged = Contact.objects.filter(last_name__startswith=tag)
    seen["count"] = tagged.count()
    seen["iterated"] = len(list(tagged.order_by("pk")))  # more than one page: nextRecordsUrl
    seen["iexact"] = Contact.objects.filter(last_name__iexact=f"{tag}-special").count()
    seen["exact_other_case"] = Contact.objects.filter(last_name=f"{tag}-SPECIAL".lower()).count()
    seen["in"] = Contact.objects.filter(last_name__in=[f"{tag}-special", f"{tag}-00001"]).count()
    seen["sliced"] = [c.last_name for c in tagged.order_by("last_name")[10:13]]
    seen["exists"] = tagged.filter(first_name="Ünïcode").exists()
    seen["city"] = Contact.objects.get(last_name=f"{tag}-special").mailing_city
    seen["recent"] = tagged.filter(system_modstamp__gte=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).count()
    deals = Opportunity.objects.filter(name__startswith=tag)
    seen["deals_closing_after"] = deals.filter(close_date__gte=dt.date(2030, 6, 1)).count()
    deal_ids = list(deals.values_list("pk", flat=True))
    seen["roles"] = sorted(
        r.role or "" for r in OpportunityContactRole.objects.filter(opportunity__in=deal_ids)
    )
    # A filter through the lookup (WHERE Opportunity.Name LIKE ...), and a join in the SELECT list.
    through = OpportunityContactRole.objects.filter(opportunity__name__startswith=tag).select_related(
        "contact"
    )
    seen["roles_through_parent"] = sorted(f"{r.role}:{r.contact.last_name}" for r in through)
    with connections["salesforce"].cursor() as cursor:
        introspection = connections["salesforce"].introspection
        tables = {t.name for t in introspection.get_table_list(cursor)}
        seen["tables"] = sorted(tables & {"Contact", "Opportunity", "OpportunityContactRole"})
        columns = introspection.get_table_description(cursor, "OpportunityContactRole")
        seen["role_columns"] = sorted(c.name for c in columns)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()

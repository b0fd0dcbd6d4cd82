"""Single saves and deletes of roles, opportunities and activities keep `PersonOpportunityTotals`
current.

The sync writes in bulk (no signals) and refreshes totals itself in the same transaction; these
receivers cover every other writer of one row at a time (a shell, a data fix, a test factory), so
the totals can never silently disagree with the roles.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import Signal, receiver

from .models import Activity, ContactRole, Opportunity
from .totals import ACTIVITY_TIMES, people_of_opportunities, refresh_person_totals

# Sent after a sync cycle has committed activities that are not the initial load's (kwarg
# `cycle`). Trigger campaigns listen; the sync never imports them.
activities_recorded = Signal()


@receiver(pre_save, sender=ContactRole)
def remember_previous_person(sender: type[ContactRole], instance: ContactRole, **kwargs: Any) -> None:
    # A role moved to another person changes the totals of both.
    instance._previous_person_id = (  # type: ignore[attr-defined]
        ContactRole.objects.filter(pk=instance.pk).values_list("person_id", flat=True).first()
        if instance.pk
        else None
    )


@receiver(post_save, sender=ContactRole)
@receiver(post_delete, sender=ContactRole)
def role_totals(sender: type[ContactRole], instance: ContactRole, **kwargs: Any) -> None:
    refresh_person_totals([instance.person_id, getattr(instance, "_previous_person_id", None)])


@receiver(post_save, sender=Opportunity)
def opportunity_totals(sender: type[Opportunity], instance: Opportunity, **kwargs: Any) -> None:
    refresh_person_totals(people_of_opportunities([instance.pk]))


@receiver(pre_delete, sender=Opportunity)
def remember_opportunity_people(sender: type[Opportunity], instance: Opportunity, **kwargs: Any) -> None:
    # After the delete the activities' opportunity is NULL (SET_NULL): find their people first.
    instance._people = people_of_opportunities([instance.pk])  # type: ignore[attr-defined]


@receiver(post_delete, sender=Opportunity)
def deleted_opportunity_totals(sender: type[Opportunity], instance: Opportunity, **kwargs: Any) -> None:
    # The roles' opportunity is already NULL (SET_NULL); whoever they belong to loses it.
    roles = ContactRole.objects.filter(sf_opportunity_id=instance.sf_id, person__isnull=False)
    refresh_person_totals([*roles.values_list("person_id", flat=True), *getattr(instance, "_people", ())])


@receiver(post_save, sender=Activity)
@receiver(post_delete, sender=Activity)
def activity_times(sender: type[Activity], instance: Activity, **kwargs: Any) -> None:
    # The latest Added / Removed times live in the totals row.
    if instance.activity_type in set(ACTIVITY_TIMES.values()):
        refresh_person_totals([instance.person_id])

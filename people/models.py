"""People: the marketing view of Salesforce Contacts and Leads."""

from __future__ import annotations

from django.db import models


class Person(models.Model):
    """A person, synced from a Salesforce Contact, a Lead, or both after a lead conversion.

    A converted lead and its contact are one person: both ids are kept, the contact's values win.
    Standard fields are columns; every other synced field of the person's Salesforce record is in
    `custom_fields`, keyed by its Salesforce API name. A person deleted in Salesforce is flagged,
    never erased, so that its history stays; a merge loser points at the person it was merged into.
    """

    sf_contact_id = models.CharField(
        "Salesforce Contact id", max_length=18, unique=True, null=True, blank=True
    )
    sf_lead_id = models.CharField("Salesforce Lead id", max_length=18, unique=True, null=True, blank=True)
    email = models.EmailField(max_length=255, blank=True, db_index=True)
    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    company = models.CharField(max_length=255, blank=True)
    title = models.CharField(max_length=255, blank=True)
    lead_source = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=80, blank=True)
    is_deleted_in_salesforce = models.BooleanField(default=False)
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged_people",
        help_text="The person this one was merged into in Salesforce.",
    )
    custom_fields = models.JSONField(default=dict, blank=True)
    # SystemModstamp of the last Contact / Lead version applied, so older re-reads are skipped.
    contact_system_modstamp = models.DateTimeField(null=True, blank=True)
    lead_system_modstamp = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        indexes = [
            models.Index(fields=["last_name", "first_name"], name="person_name_idx"),
            # The people list's ordering, so a page reads its rows from the index.
            models.Index(fields=["last_name", "first_name", "id"], name="person_list_idx"),
            models.Index(fields=["is_deleted_in_salesforce"], name="person_deleted_idx"),
        ]
        verbose_name_plural = "people"

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or f"Person {self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def salesforce_kind(self) -> str:
        return "Contact" if self.sf_contact_id else "Lead"

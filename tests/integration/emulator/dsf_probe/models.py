"""The objects the probe reads, declared as a django-salesforce user would declare them."""

from salesforce import models  # type: ignore[import-untyped]  # django-salesforce ships no types


class Contact(models.SalesforceModel):
    """Contact; column names follow django-salesforce's default (last_name -> LastName)."""

    last_name = models.CharField(max_length=80)
    first_name = models.CharField(max_length=40, blank=True, null=True)
    email = models.EmailField(blank=True, null=True)
    mailing_city = models.CharField(max_length=40, blank=True, null=True)
    system_modstamp = models.DateTimeField(sf_read_only=models.READ_ONLY)

    class Meta(models.Model.Meta):
        db_table = "Contact"


class Opportunity(models.SalesforceModel):
    """Opportunity."""

    name = models.CharField(max_length=120)
    stage_name = models.CharField(max_length=255)
    close_date = models.DateField()
    amount = models.DecimalField(max_digits=18, decimal_places=2, blank=True, null=True)

    class Meta(models.Model.Meta):
        db_table = "Opportunity"


class OpportunityContactRole(models.SalesforceModel):
    """A contact's role on an opportunity."""

    opportunity = models.ForeignKey(Opportunity, models.DO_NOTHING)
    contact = models.ForeignKey(Contact, models.DO_NOTHING)
    role = models.CharField(max_length=40, blank=True, null=True)
    is_primary = models.BooleanField(default=False)

    class Meta(models.Model.Meta):
        db_table = "OpportunityContactRole"

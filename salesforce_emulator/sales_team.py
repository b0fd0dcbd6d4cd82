"""A sales team that keeps working in the org: stages move, amounts change, contacts are added to
and removed from deals, new deals and leads appear. The demo and the latency benchmark watch it."""

from __future__ import annotations

import datetime as dt
import random

from .schema import CONTACT_ROLES, LEAD_SOURCES, OPPORTUNITY_STAGES
from .store import Store, table

OPEN_STAGES = [s["value"] for s in OPPORTUNITY_STAGES if not s["closed"]]
ALL_STAGES = [s["value"] for s in OPPORTUNITY_STAGES]


class SalesTeam:
    def __init__(self, store: Store, seed: int | None = None) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.actions = 0

    def _random_id(self, sobject: str, extra: str = "") -> str | None:
        """A random live row, found by a random rowid (ORDER BY random() would scan millions)."""
        top = self.store.db.execute(f"SELECT MAX(rowid) FROM {table(sobject)}").fetchone()[0]
        if not top:
            return None
        start = self.rng.randint(1, top)
        sql = f"SELECT id FROM {table(sobject)} WHERE rowid >= ? AND is_deleted = 0 AND visible = 1 {extra} LIMIT 1"
        row = (
            self.store.db.execute(sql, (start,)).fetchone()
            or self.store.db.execute(sql.replace("rowid >= ?", "rowid >= 1"), ()).fetchone()
        )
        return row[0] if row else None

    def act(self) -> str:
        """Do one thing a sales rep would do; return what it was."""
        self.actions += 1
        roll = self.rng.random()
        if roll < 0.35:
            return self.move_stage()
        if roll < 0.55:
            return self.change_amount()
        if roll < 0.70:
            return self.add_contact_role()
        if roll < 0.80:
            return self.remove_contact_role()
        if roll < 0.90:
            return self.new_opportunity()
        if roll < 0.95:
            return self.retitle_contact()
        return self.new_lead()

    def move_stage(self) -> str:
        opportunity_id = self._random_id("Opportunity", "AND json_extract(fields, '$.IsClosed') = 0")
        if opportunity_id is None:
            return self.new_opportunity()
        stage = self.rng.choice(ALL_STAGES)
        self.store.update("Opportunity", opportunity_id, {"StageName": stage})
        return f"stage {opportunity_id} -> {stage}"

    def change_amount(self) -> str:
        opportunity_id = self._random_id("Opportunity")
        if opportunity_id is None:
            return self.new_opportunity()
        amount = float(round(self.rng.lognormvariate(9.6, 1.0), -2) or 500.0)
        self.store.update("Opportunity", opportunity_id, {"Amount": amount})
        return f"amount {opportunity_id} -> {amount}"

    def add_contact_role(self) -> str:
        opportunity_id, contact_id = self._random_id("Opportunity"), self._random_id("Contact")
        if opportunity_id is None or contact_id is None:
            return "nothing to add"
        role_id = self.store.create(
            "OpportunityContactRole",
            {
                "OpportunityId": opportunity_id,
                "ContactId": contact_id,
                "Role": self.rng.choice(CONTACT_ROLES),
            },
        )
        return f"role {role_id} added"

    def remove_contact_role(self) -> str:
        role_id = self._random_id("OpportunityContactRole")
        if role_id is None:
            return "nothing to remove"
        self.store.delete("OpportunityContactRole", role_id)
        return f"role {role_id} removed"

    def new_opportunity(self) -> str:
        account_id = self._random_id("Account")
        opportunity_id = self.store.create(
            "Opportunity",
            {
                "AccountId": account_id,
                "Name": f"New deal {self.actions}",
                "StageName": self.rng.choice(OPEN_STAGES),
                "Amount": float(self.rng.randrange(1, 200) * 500),
                "CloseDate": (dt.date.today() + dt.timedelta(days=self.rng.randint(10, 180))).isoformat(),
                "LeadSource": self.rng.choice(LEAD_SOURCES),
            },
        )
        for index in range(self.rng.randint(1, 3)):
            contact_id = self._random_id("Contact")
            if contact_id:
                self.store.create(
                    "OpportunityContactRole",
                    {
                        "OpportunityId": opportunity_id,
                        "ContactId": contact_id,
                        "IsPrimary": index == 0,
                        "Role": self.rng.choice(CONTACT_ROLES),
                    },
                )
        return f"opportunity {opportunity_id} created"

    def retitle_contact(self) -> str:
        contact_id = self._random_id("Contact")
        if contact_id is None:
            return "nobody to retitle"
        title = self.rng.choice(["VP Sales", "CTO", "Head of Marketing", "Procurement Lead", "CFO"])
        self.store.update("Contact", contact_id, {"Title": title})
        return f"contact {contact_id} -> {title}"

    def new_lead(self) -> str:
        lead_id = self.store.create(
            "Lead",
            {
                "FirstName": "Pat",
                "LastName": f"Prospect {self.actions}",
                "Company": "Inbound Inc.",
                "Email": f"pat.prospect.{self.actions}@example.com",
                "LeadSource": "Web",
            },
        )
        return f"lead {lead_id} created"

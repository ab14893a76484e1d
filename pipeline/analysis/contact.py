"""The interaction documented (the ``contact`` block of the record): why the customer made
contact, what the agent did, the outcome, follow-ups promised, products and accounts mentioned.
Extractive and evidence-backed: every text is a quote of the interaction (masked as the
transcript is), with its time or message."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ContactOptions:
    """The ``contact`` section."""

    enabled: bool = True
    """Write the contact block (reason, actions, outcome, follow-ups, mentions)."""
    products: list[str] = field(default_factory=list)
    """Product, plan and service names to find as mentions (beside the ones found by the
    language model), e.g. [Fibre 500, Premium Cover]."""

"""Billing writes: the public service functions of the billing app.

The engine lives in :mod:`wuye.billing.engine`; import services from here.
"""

from __future__ import annotations

from wuye.billing.engine.runs import BillingRunError, billing_run_execute

__all__ = ["BillingRunError", "billing_run_execute"]

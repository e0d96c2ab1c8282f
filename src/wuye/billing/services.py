"""Billing writes: the public service functions of the billing app, in one place.

The billing run lives in :mod:`wuye.billing.engine`; late fees, prepayments and waivers in
their own modules. Callers (views, commands, tasks) import from here.
"""

from __future__ import annotations

from wuye.billing.engine.runs import BillingRunError, billing_run_execute
from wuye.billing.latefees import late_fee_charge, late_fees_charge
from wuye.billing.prepayments import prepaid_offset_apply, prepayment_deposit
from wuye.billing.waivers import waiver_approve, waiver_reject, waiver_request

__all__ = [
    "BillingRunError",
    "billing_run_execute",
    "late_fee_charge",
    "late_fees_charge",
    "prepaid_offset_apply",
    "prepayment_deposit",
    "waiver_approve",
    "waiver_reject",
    "waiver_request",
]

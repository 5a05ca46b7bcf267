"""The built-in sample workspace and its deterministic data generator.

The sample company is Harborline Communications, a US provider of mobile
plans, home fiber and the Harbor+ streaming add-on, with its contact centre
in New York time. Over the twelve months Dec 2025 - Nov 2026 fourteen
decisions of seven departments each set off a wave of contacts on top of an
ordinary, seasonal base load; the rules in `rules/*.yaml` are written to find
those waves. This module holds the story as data (`STREAMS`) and turns it
into `contacts.parquet` and `orders.parquet`.

Why it is built this way:
- The YAML is hand-written and shipped in the package; the generator copies
  it instead of writing its own, so rules and data cannot drift apart. The
  dates, reasons, tags and texts below are chosen to match those rules.
- Randomness is a SplitMix64 hash of (seed, stream, column, row) computed in
  polars expressions: vectorised (1,000,000 contacts in about five seconds),
  independent of the polars version's own hash, and byte-for-byte
  reproducible for the same (contacts, seed).
- Every stream is drawn by inverse CDF (`search_sorted` on cumulative
  weights), so its share of the total and its daily shape are exact knobs.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import yaml

from chargeback.resources import sample_workspace

__all__ = ["STREAMS", "TIMEZONE", "Stream", "build_contacts", "build_orders", "generate_sample"]

Weights = Mapping[str | None, float]  # label -> relative weight (None = null value)

# --------------------------------------------------------------------------- the calendar

TIMEZONE = "America/New_York"  # must equal `timezone:` in chargeback.yaml
FIRST_DAY = date(2025, 12, 1)  # first local day with contacts
LAST_DAY = date(2026, 11, 30)  # last local day with contacts (12 calendar months)
ORDERS_FIRST_DAY = date(2025, 6, 1)  # orders start earlier: save values look back 365 days
DAYS = (LAST_DAY - FIRST_DAY).days + 1
ORDER_DAYS = (LAST_DAY - ORDERS_FIRST_DAY).days + 1

# Contact volume by weekday (Monday first) and by calendar month: Mondays and
# the post-holiday January bills are busy, summer is quiet.
WEEKDAY = (1.22, 1.10, 1.04, 1.00, 0.95, 0.62, 0.48)
MONTH = {
    1: 1.15, 2: 0.97, 3: 1.00, 4: 0.95, 5: 0.93, 6: 0.92,
    7: 0.95, 8: 0.98, 9: 1.05, 10: 1.00, 11: 1.06, 12: 1.12,
}  # fmt: skip
HOLIDAYS = {
    date(2025, 12, 24): 0.70,
    date(2025, 12, 25): 0.35,
    date(2025, 12, 31): 0.75,
    date(2026, 1, 1): 0.45,
    date(2026, 5, 25): 0.70,
    date(2026, 7, 3): 0.75,
    date(2026, 7, 4): 0.50,
    date(2026, 9, 7): 0.70,
    date(2026, 11, 26): 0.40,
}
# Local hour of day: live channels follow opening hours, written ones do not.
LIVE_HOURS = (
    0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 0.8, 2.0, 4.5, 7.0, 8.0, 8.0,
    7.5, 7.5, 7.5, 7.0, 6.5, 5.5, 4.5, 4.0, 3.2, 2.2, 1.2, 0.5,
)  # fmt: skip
ASYNC_HOURS = (
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4.0, 5.0, 5.5, 5.5,
    5.5, 5.5, 5.2, 5.0, 4.8, 4.5, 4.4, 4.5, 4.4, 3.8, 2.8, 1.8,
)  # fmt: skip
LIVE_CHANNELS = ("phone", "chat", "sms")
# The seasonal streams drift down over the year (from 1.12 to 0.86 of their
# level) as self-service takes the simple contacts.
BASE_TREND = (1.12, 0.86)
# Days between a contact and the customer's follow-up (SPEC 7 repeats: < 7 days).
REPEAT_DELAY = (0.15, 0.30, 0.20, 0.12, 0.10, 0.08, 0.05)

# --------------------------------------------------------------------------- the customers

CUSTOMERS_PER_CONTACT = 0.4  # 150,000 contacts come from 60,000 customers
CUSTOMER_SKEW = 1.35  # > 1: a few customers contact often (low ids are the frequent ones)
REGIONS: Weights = {"northeast": 30, "southeast": 21, "midwest": 18, "south": 16, "west": 15}
PLANS: Weights = {
    "unlimited": 27, "unlimited_plus": 12, "essentials": 18, "prepaid": 9,
    "legacy_3g": 4, "fiber_500": 17, "fiber_1g": 13,
}  # fmt: skip
HOME_PRODUCT = {
    "unlimited": "mobile", "unlimited_plus": "mobile", "essentials": "mobile",
    "prepaid": "mobile", "legacy_3g": "mobile", "fiber_500": "fiber", "fiber_1g": "fiber",
}  # fmt: skip
MOBILE_PLANS = ("unlimited", "unlimited_plus", "essentials", "prepaid", "legacy_3g")
FIBER_PLANS = ("fiber_500", "fiber_1g")
UNLIMITED_PLANS = ("unlimited", "unlimited_plus")

# Median handle seconds per channel (lognormal around it); email and social
# count reading and writing time.
HANDLE_MEDIAN = {
    "phone": 420.0, "chat": 600.0, "email": 240.0,
    "social": 180.0, "sms": 120.0, "messaging": 360.0,
}  # fmt: skip
HANDLE_SIGMA = 0.55
SAVE_UPSELL = 45.0  # median revenue of a save that came with an upsell
SAVE_UPSELL_RATE = 0.35

# --------------------------------------------------------------------------- orders

ORDERS_PER_CUSTOMER = 2.0  # base purchases (devices, accessories, add-ons) over 18 months
ORDER_MEDIAN = 55.0
# Orders after a bad contact are lost with this probability (the customer walks).
LOST_AFTER = {"unresolved": 0.45, "escalated": 0.35, "cancelled": 0.85}
# Chance that a contact with this outcome leads to an extra order soon after.
EXTRA_ORDER = {"resolved": 0.22, "sale": 0.35, "saved": 0.30, "unresolved": 0.02, "escalated": 0.03}
EXTRA_ORDER_MEAN_DAYS = 35.0
EXTRA_ORDER_MEDIAN = 45.0

# --------------------------------------------------------------------------- the story

SERVICE: Weights = {"resolved": 72, "unresolved": 18, "escalated": 10}
DISPUTE: Weights = {"resolved": 52, "unresolved": 32, "escalated": 16}
SALES: Weights = {"sale": 45, "resolved": 40, "unresolved": 15}
CANCEL: Weights = {"cancelled": 48, "saved": 30, "unresolved": 13, "escalated": 9}
BASE_CHANNELS: Weights = {
    "phone": 44, "chat": 28, "email": 14, "social": 5, "sms": 6, "messaging": 3,
}  # fmt: skip
PHONE_HEAVY: Weights = {"phone": 60, "chat": 28, "email": 8, "sms": 2, "messaging": 2}
DIGITAL: Weights = {"chat": 45, "phone": 25, "email": 12, "social": 12, "messaging": 6}


@dataclass(frozen=True)
class Stream:
    """One source of contacts: its share of the total, its shape in time and its content.

    The base streams use reasons and texts no rule matches; the background
    streams give the baseline rules a rate to subtract; the decision streams
    are the bumps each decision caused, shaped to start on its effective date.
    """

    name: str
    weight: float  # share of all contacts (the weights are normalised)
    reasons: Weights
    channels: Weights
    texts: Weights  # subject lines for any reason not in texts_by_reason
    start: date = FIRST_DAY
    end: date = LAST_DAY
    decay_days: float | None = None  # e-folding time of a bump; None = level
    floor: float = 0.0  # where a bump settles, as a share of its peak
    ramp_days: float | None = None  # build-up time of something that grows
    seasonal: bool = False  # follow the base load's month pattern and growth
    weekly: bool = True  # weekday pattern (an outage ignores the calendar)
    billing_cycle: bool = False  # busier on days 3-12 of each month (fees land)
    tags: Weights = field(default_factory=lambda: {"": 1.0})  # "a|b" = two tags
    outcomes: Weights = field(default_factory=lambda: dict(SERVICE))
    products: Weights | None = None  # None: the customer's home product
    plans: tuple[str, ...] | None = None  # draw only customers on these plans
    regions: tuple[str, ...] | None = None  # draw only customers in these regions
    handle_factor: float = 1.0
    sale_value: float = 350.0  # median revenue of a sale
    repeat_rate: float = 0.05  # share that are follow-ups of an earlier contact
    anonymous: float = 0.01  # share without a customer_id (social adds more)
    texts_by_reason: Mapping[str | None, Weights] = field(default_factory=dict)


def _d(text: str) -> date:
    return date.fromisoformat(text)


# The stream tables stay compact, one knob per line group. fmt: off/on keeps
# the formatter from putting every argument on a line of its own.
# fmt: off
BASE: tuple[Stream, ...] = (
    Stream(
        "base-billing", 5.0,
        reasons={
            "billing.bill_explain": 40, "billing.payment_arrangement": 18,
            "billing.refund_status": 14, "billing.payment_method": 18, "billing.bill_copy": 10,
        },
        channels=BASE_CHANNELS,
        texts={},
        texts_by_reason={
            "billing.bill_explain": {
                "Question about my bill": 4, "Bill is higher than last month": 3,
                "Explain the charges on my statement": 2, "Charged twice this month": 1,
            },
            "billing.payment_arrangement": {"Need more time to pay": 1, "Set up a payment plan": 1},
            "billing.refund_status": {"Where is my refund?": 3, "Refund not on my card yet": 1},
            "billing.payment_method": {"Update card on file": 1, "Change payment method": 1},
            "billing.bill_copy": {"Need a copy of my invoice": 2, "Statement for my taxes": 1},
        },
        tags={"": 70, "billing": 25, "vip": 5}, seasonal=True, billing_cycle=True,
    ),
    Stream(
        "base-tech", 6.5,
        reasons={
            "tech.slow_speed": 30, "tech.wifi_setup": 20, "tech.device_help": 25,
            "tech.tv_setup": 10, "tech.voicemail": 8, "tech.coverage": 7,
        },
        channels=BASE_CHANNELS,
        texts={},
        texts_by_reason={
            "tech.slow_speed": {
                "Internet slow in the evenings": 2, "Speed test below plan speed": 2,
                "Video calls keep lagging": 1,
            },
            "tech.wifi_setup": {"Help setting up Wi-Fi": 2, "Wi-Fi drops upstairs": 1},
            "tech.device_help": {
                "Phone won't connect to 5G": 2, "Hotspot not working": 2,
                "Bluetooth pairing help": 1,
            },
            "tech.tv_setup": {"TV box shows no picture": 2, "Remote not pairing with TV box": 1},
            "tech.voicemail": {"Voicemail not working": 2, "Reset my voicemail PIN": 1},
            "tech.coverage": {"Can't make calls indoors": 2, "Weak signal at work": 1},
        },
        tags={"": 75, "tech": 20, "callback": 5}, seasonal=True, handle_factor=1.15,
        repeat_rate=0.07,
    ),
    Stream(
        "base-account", 3.5,
        reasons={
            "account.address_change": 25, "account.password_reset": 25, "account.add_line": 20,
            "account.plan_question": 20, "account.number_change": 10,
        },
        channels=BASE_CHANNELS,
        texts={},
        texts_by_reason={
            "account.address_change": {
                "Moving house, update my address": 2, "Update my email address": 1,
            },
            "account.password_reset": {"Reset my account password": 1},
            "account.add_line": {"Add a line for my son": 2, "Add an authorised user": 1},
            "account.plan_question": {
                "Which plan is right for me?": 2, "What does my plan include?": 1,
            },
            "account.number_change": {"Change my phone number": 1},
        },
        seasonal=True, handle_factor=0.8,
    ),
    Stream(
        "base-sales", 3.0,
        reasons={"sales.new_line": 35, "sales.device_upgrade": 40, "sales.accessories": 25},
        channels={"phone": 50, "chat": 35, "email": 5, "social": 4, "messaging": 6},
        texts={},
        texts_by_reason={
            "sales.new_line": {"Add a tablet line": 1, "Family plan pricing": 2},
            "sales.device_upgrade": {
                "Upgrade to the new phone": 3, "Trade-in value for my phone": 2,
                "Is the new Pixel in stock?": 2,
            },
            "sales.accessories": {"Buy a case and charger": 2, "Smartwatch for my plan": 1},
        },
        outcomes=SALES, seasonal=True, handle_factor=1.3, sale_value=380.0, repeat_rate=0.03,
    ),
    Stream(
        "base-orders", 2.0,
        reasons={"orders.status": 55, "orders.return": 45},
        channels=BASE_CHANNELS,
        texts={},
        texts_by_reason={
            "orders.status": {"Order status": 3, "Change delivery address": 1},
            "orders.return": {
                "Return my old device": 2, "Return label request": 2,
                "Exchange a faulty phone": 1,
            },
        },
        products={"devices": 1}, seasonal=True, handle_factor=0.8,
    ),
    Stream(
        "base-general", 2.0,
        reasons={
            "general.inquiry": 30, "general.store_hours": 15, "general.feedback": 20,
            "roaming.question": 25, "general.complaint": 10,
        },
        channels={"phone": 30, "chat": 20, "email": 25, "social": 15, "sms": 5, "messaging": 5},
        texts={},
        texts_by_reason={
            "general.inquiry": {"General question": 2, "Do you sell gift cards?": 1},
            "general.store_hours": {"Store opening hours": 1},
            "general.feedback": {"Compliment for your agent": 1, "Thanks for the quick help!": 1},
            "roaming.question": {"Travelling to Mexico next week": 1, "Roaming charges abroad": 1},
            "general.complaint": {"Unhappy with the service": 2, "Waited too long on hold": 1},
        },
        seasonal=True, handle_factor=0.7, anonymous=0.04,
    ),
)

BACKGROUND: tuple[Stream, ...] = (
    # The rate the autopay-failures baseline subtracts.
    Stream(
        "bg-autopay", 1.0,
        reasons={"billing.autopay_failed": 70, "billing.autopay_setup": 30},
        channels=PHONE_HEAVY,
        texts={
            "Autopay didn't go through": 45, "Payment declined on autopay": 35,
            "Autopay charged the wrong card": 20,
        },
        texts_by_reason={
            "billing.autopay_setup": {"Set up autopay": 2, "Turn off autopay": 1},
        },
        seasonal=True, billing_cycle=True,
    ),
    # The rate the app-login-failures baseline subtracts.
    Stream(
        "bg-login", 1.4,
        reasons={"app.login_issue": 60, "app.login_locked": 40},
        channels=DIGITAL,
        texts={
            "Can't log in to the app": 35, "Account locked after password attempts": 25,
            "Login code never arrives": 20, "App says my password is wrong": 20,
        },
        seasonal=True,
    ),
    # Ordinary churn, what the price-rise-cancellations baseline subtracts.
    Stream(
        "bg-cancel", 2.2,
        reasons={"account.cancel": 70, "account.cancel_request": 30},
        channels=PHONE_HEAVY,
        texts={
            "Cancel my service": 35, "Want to cancel my line": 25,
            "Moving abroad, cancel account": 15, "Cancel, found a better deal": 25,
        },
        outcomes=CANCEL, seasonal=True, handle_factor=1.2, repeat_rate=0.08,
    ),
    # Router trouble without the firmware's signature: not matched.
    Stream(
        "bg-router", 0.8,
        reasons={"tech.router_issue": 70, "tech.router_replacement": 30},
        channels=BASE_CHANNELS,
        texts={
            "Router lights blinking orange": 45, "Router not working": 35,
            "Router overheating": 20,
        },
        texts_by_reason={
            "tech.router_replacement": {"Need a replacement router": 2, "Router was damaged": 1},
        },
        plans=FIBER_PLANS, seasonal=True, handle_factor=1.2,
    ),
    Stream(
        "bg-delivery", 0.5,
        reasons={"orders.delivery_late": 50, "orders.delivery_status": 50},
        channels=BASE_CHANNELS,
        texts={"Where is my order?": 40, "Delivery is late": 30, "Tracking hasn't updated": 30},
        products={"devices": 1}, seasonal=True,
    ),
    Stream(
        "bg-simswap", 0.4,
        reasons={"account.sim_swap": 1},
        channels=PHONE_HEAVY,
        texts={
            "New SIM card needed": 40, "Lost my phone, need a SIM": 35,
            "SIM swap to my new phone": 25,
        },
        plans=MOBILE_PLANS, seasonal=True,
    ),
    Stream(
        "bg-credit", 0.4,
        reasons={"billing.credit_request": 1},
        channels=BASE_CHANNELS,
        texts={
            "Credit for the downtime": 30, "Request a bill credit": 40,
            "Credit for missed technician visit": 30,
        },
        seasonal=True,
    ),
    Stream(
        "bg-portin", 0.6,
        reasons={"account.port_in": 50, "sales.port_in": 50},
        channels=BASE_CHANNELS,
        texts={
            "Bring my number from another carrier": 40, "Port-in status": 30,
            "Transfer my number": 30,
        },
        outcomes=SALES, plans=MOBILE_PLANS, seasonal=True, sale_value=300.0,
    ),
    Stream(
        "bg-retention", 0.6,
        reasons={"retention.offer": 1},
        channels=PHONE_HEAVY,
        texts={"Any better offers?": 40, "Thinking about leaving": 35, "Loyalty discount": 25},
        outcomes={"saved": 45, "unresolved": 20, "cancelled": 25, "resolved": 10},
        seasonal=True, handle_factor=1.2,
    ),
    Stream(
        "bg-noservice", 0.5,
        reasons={"tech.no_service": 60, "tech.outage_report": 40},
        channels=BASE_CHANNELS,
        texts={
            "No signal at home": 35, "Internet down": 35, "No service since this morning": 30,
        },
        seasonal=True,
    ),
    Stream(
        "bg-verification", 0.5,
        reasons={"account.verification": 1},
        channels=BASE_CHANNELS,
        texts={"Verify my identity": 50, "Security questions failing": 50},
        seasonal=True,
    ),
    Stream(
        "bg-plan-change", 0.5,
        reasons={"account.plan_change": 1},
        channels=BASE_CHANNELS,
        texts={"Switch to a cheaper plan": 35, "Change my plan": 35, "Upgrade my data plan": 30},
        outcomes=SALES, plans=MOBILE_PLANS, seasonal=True, sale_value=200.0,
    ),
)

DECISION_STREAMS: tuple[Stream, ...] = (
    # router-firmware-72 (network, 2025-12-09)
    Stream(
        "router-firmware", 2.2,
        reasons={"tech.router_issue": 55, "tech.router_reboot": 45},
        channels={"phone": 55, "chat": 30, "social": 8, "email": 7},
        texts={
            "Router stuck in a reboot loop": 30,
            "Router keeps restarting since the firmware update": 25,
            "Router reboots itself every night": 15, "Wi-Fi gone after firmware 7.2": 15,
            "Router lights blinking orange": 15,
        },
        start=_d("2025-12-09"), end=_d("2026-02-20"), decay_days=12, floor=0.05,
        outcomes={"resolved": 55, "unresolved": 30, "escalated": 15},
        plans=FIBER_PLANS, handle_factor=1.2, repeat_rate=0.12,
    ),
    # paper-bill-fee (billing, 2026-01-15; first statements with it land ~01-25)
    Stream(
        "paper-fee", 2.0,
        reasons={
            "billing.paper_bill_fee": 55, "billing.paperless_signup": 25,
            "billing.bill_explain": 20,
        },
        channels={"phone": 50, "chat": 25, "email": 20, "sms": 5},
        texts={
            "Why am I charged for a paper bill?": 35, "New $2.99 statement fee": 35,
            "Remove the paper statement charge": 30,
        },
        texts_by_reason={
            "billing.paperless_signup": {
                "Switch me to paperless billing": 3, "How do I get e-bills?": 2,
            },
            "billing.bill_explain": {
                "What is the $2.99 on my bill?": 2, "Extra charge on my statement": 1,
            },
        },
        start=_d("2026-01-25"), decay_days=20, floor=0.1,
        tags={"paper-bill": 75, "paper-bill|billing": 10, "": 15},
    ),
    # app-v5-launch (digital, 2026-02-10)
    Stream(
        "app-login", 2.4,
        reasons={"app.login_issue": 50, "app.login_locked": 30, "app.login_2fa": 20},
        channels=DIGITAL,
        texts={
            "Can't log in after the app update": 35, "Locked out of HarborApp": 25,
            "2FA code not accepted": 20, "App logs me out every time": 20,
        },
        start=_d("2026-02-10"), decay_days=25, floor=0.1, repeat_rate=0.1,
    ),
    Stream(
        "app-crash", 1.8,
        reasons={"app.crash": 65, "app.bug_report": 35},
        channels={"chat": 40, "email": 25, "social": 20, "phone": 15},
        texts={
            "App crashes when I open my bill": 30, "App freezes on the home screen": 25,
            "HarborApp 5.0 keeps closing": 25, "Bug: app shows the wrong balance": 20,
        },
        start=_d("2026-02-10"), decay_days=30, floor=0.1, handle_factor=0.9,
    ),
    Stream(
        "app-social", 0.6,
        reasons={None: 60, "social.mention": 40},
        channels={"social": 1},
        texts={
            "The new app update is terrible, keeps crashing": 30,
            "@Harborline your app keeps freezing": 25,
            "HarborApp logged out again after the update": 20,
            "New app design is confusing": 25,
        },
        start=_d("2026-02-10"), decay_days=20, anonymous=0.35,
    ),
    # late-fee-2026 (billing, 2026-03-01): recurs with every billing cycle
    Stream(
        "late-fee", 4.2,
        reasons={
            "billing.late_fee_dispute": 60, "billing.late_fee": 25, "billing.fee_dispute": 15,
        },
        channels=PHONE_HEAVY,
        texts={
            "Late fee even though I paid on time": 30, "Dispute the $15 late fee": 25,
            "Why was I charged a late fee?": 20, "Please waive the late charge": 15,
            "Fee on my bill I don't understand": 10,
        },
        start=_d("2026-03-01"), decay_days=30, floor=0.6, billing_cycle=True,
        tags={"fee": 50, "fee|late": 30, "": 20}, outcomes=DISPUTE,
        handle_factor=1.35, repeat_rate=0.12,
    ),
    Stream(
        "late-fee-inbox", 0.9,
        reasons={None: 50, "general.inquiry": 50},
        channels={"email": 80, "social": 20},
        texts={
            "Late fee on my account": 30, "Charged a late fee again": 25,
            "Unfair late payment fee": 25, "Reverse the late charge please": 20,
        },
        start=_d("2026-03-01"), decay_days=30, floor=0.6, billing_cycle=True,
        outcomes=DISPUTE,
    ),
    # switch-save-promo (marketing, 2026-03-16 .. 2026-05-31)
    Stream(
        "promo-code", 1.6,
        reasons={"sales.promo_question": 40, "billing.promo_credit": 35, "general.inquiry": 25},
        channels=BASE_CHANNELS,
        texts={
            "Promo code not working at checkout": 30, "Switch & Save credit missing from bill": 25,
            "Coupon code rejected": 15, "Where is my Switch and Save discount?": 20,
            "Promo code expired?": 10,
        },
        start=_d("2026-03-16"), end=_d("2026-05-31"), decay_days=45, floor=0.3,
    ),
    Stream(
        "promo-port", 1.0,
        reasons={"account.port_in": 45, "sales.port_in": 55},
        channels={"phone": 55, "chat": 35, "messaging": 10},
        texts={
            "Switching from another carrier with the promo": 40,
            "Port my number for Switch & Save": 30, "Transfer 3 lines to Harborline": 30,
        },
        start=_d("2026-03-16"), end=_d("2026-05-31"), decay_days=60, floor=0.3,
        tags={"promo": 50, "switch-save": 35, "promo|switch-save": 15},
        outcomes={"sale": 55, "resolved": 35, "unresolved": 10},
        plans=MOBILE_PLANS, handle_factor=1.3, sale_value=450.0,
    ),
    # streaming-bundle (marketing, 2026-04-01): sales grow, access issues settle
    Stream(
        "bundle-sales", 2.0,
        reasons={"sales.streaming_bundle": 70, "sales.streaming_addon": 30},
        channels={"phone": 40, "chat": 45, "messaging": 10, "email": 5},
        texts={
            "Add Harbor+ to my plan": 35, "How much is the streaming bundle?": 25,
            "Bundle Harbor+ with my fiber": 20, "Sign up for Harbor+": 20,
        },
        start=_d("2026-04-01"), ramp_days=20, seasonal=True,
        outcomes={"sale": 55, "resolved": 35, "unresolved": 10},
        products={"harbor_plus": 1}, handle_factor=1.1, sale_value=160.0,
    ),
    Stream(
        "bundle-access", 1.6,
        reasons={"tech.streaming_login": 50, "tech.streaming_playback": 50},
        channels=DIGITAL,
        texts={},
        texts_by_reason={
            "tech.streaming_login": {
                "Can't sign in to Harbor+": 3, "Harbor+ says no subscription": 2,
            },
            "tech.streaming_playback": {
                "Harbor+ won't play on my TV": 3, "Streaming buffers constantly": 2,
            },
        },
        start=_d("2026-04-01"), ramp_days=10, decay_days=60, floor=0.35,
        products={"harbor_plus": 92, "tv": 8},
    ),
    # autopay-migration (billing, 2026-05-04 .. 2026-06-30)
    Stream(
        "autopay-migration", 1.3,
        reasons={"billing.autopay_failed": 80, "billing.autopay_setup": 20},
        channels=PHONE_HEAVY,
        texts={
            "Autopay failed this month": 40, "Payment processor declined my card": 35,
            "Autopay charged me twice": 25,
        },
        texts_by_reason={
            "billing.autopay_setup": {
                "Re-enter my card for autopay": 2, "Autopay switched off by itself": 1,
            },
        },
        start=_d("2026-05-04"), end=_d("2026-06-30"), decay_days=15, floor=0.15,
        handle_factor=1.2, repeat_rate=0.1,
    ),
    Stream(
        "autopay-late-fees", 0.6,
        reasons={"billing.late_fee_dispute": 1},
        channels=PHONE_HEAVY,
        texts={
            "Late fee after autopay failed": 40, "Autopay failed and now a late fee": 35,
            "Charged a late fee, autopay didn't run": 25,
        },
        start=_d("2026-05-10"), end=_d("2026-06-30"), decay_days=20,
        tags={"autopay": 45, "autopay|fee": 40, "autopay|fee|late": 15},
        outcomes=DISPUTE, handle_factor=1.3, repeat_rate=0.1,
    ),
    # sim-swap-id-check (compliance, 2026-06-01)
    Stream(
        "sim-swap", 1.2,
        reasons={"account.sim_swap": 60, "account.sim_swap_denied": 40},
        channels={"phone": 60, "chat": 30, "email": 5, "sms": 5},
        texts={
            "Told to visit a store for a SIM swap": 30, "Need a new SIM but no store nearby": 25,
            "Why do I need ID for a SIM?": 25, "SIM swap refused on the phone": 20,
        },
        start=_d("2026-06-01"), decay_days=40, floor=0.25,
        outcomes={"escalated": 25, "unresolved": 35, "resolved": 40},
        plans=MOBILE_PLANS, handle_factor=1.4, repeat_rate=0.15,
    ),
    Stream(
        "id-verification", 0.7,
        reasons={"account.verification": 1},
        channels={"phone": 65, "chat": 30, "email": 5},
        texts={
            "Can't pass ID verification": 40, "Verification failed twice": 35,
            "Store says my ID check failed": 25,
        },
        start=_d("2026-06-01"), decay_days=50, floor=0.3,
        outcomes={"escalated": 40, "unresolved": 35, "resolved": 25},
        handle_factor=1.3, repeat_rate=0.12,
    ),
    # unlimited-price-rise (pricing, 2026-07-01)
    Stream(
        "price-questions", 2.0,
        reasons={"billing.price_increase": 1},
        channels=PHONE_HEAVY,
        texts={
            "Why did my bill go up $5?": 35, "Price increase on Unlimited": 25,
            "Was not told about the price rise": 20, "New price on my plan": 20,
        },
        start=_d("2026-07-01"), decay_days=18, floor=0.1,
        outcomes={"resolved": 60, "unresolved": 30, "escalated": 10}, plans=UNLIMITED_PLANS,
    ),
    Stream(
        "price-cancels", 1.5,
        reasons={"account.cancel": 70, "account.cancel_request": 30},
        channels=PHONE_HEAVY,
        texts={
            "Cancelling because of the price increase": 40,
            "Cancel, the $5 rise is too much": 30, "Leaving for a cheaper carrier": 30,
        },
        start=_d("2026-07-01"), end=_d("2026-10-15"), decay_days=25, floor=0.15,
        outcomes=CANCEL, plans=UNLIMITED_PLANS, handle_factor=1.3,
    ),
    Stream(
        "price-retention", 0.9,
        reasons={"retention.offer": 1},
        channels=PHONE_HEAVY,
        texts={
            "Any discount to offset the price rise?": 40, "Loyalty offer after price increase": 30,
            "Match the old price or I leave": 30,
        },
        start=_d("2026-07-01"), end=_d("2026-10-15"), decay_days=30,
        outcomes={"saved": 55, "unresolved": 25, "cancelled": 20},
        plans=UNLIMITED_PLANS, handle_factor=1.4,
    ),
    # fiber-outage-aug (network, 2026-08-18): the Northeast, three days dark
    Stream(
        "outage", 1.4,
        reasons={"tech.no_service": 45, "tech.no_service_mobile": 25, "tech.outage_report": 30},
        channels={"phone": 45, "chat": 20, "social": 20, "sms": 10, "email": 5},
        texts={
            "No internet since last night": 30, "No signal anywhere in Boston": 20,
            "Is there an outage in my area?": 30, "Everything is down, when will it be fixed?": 20,
        },
        start=_d("2026-08-18"), end=_d("2026-08-27"), decay_days=1.5, weekly=False,
        outcomes={"resolved": 40, "unresolved": 55, "escalated": 5},
        regions=("northeast",), handle_factor=0.6, repeat_rate=0.25, anonymous=0.05,
    ),
    Stream(
        "outage-credits", 0.6,
        reasons={"billing.credit_request": 1},
        channels=BASE_CHANNELS,
        texts={
            "Credit for the outage": 40, "Compensation for three days without service": 30,
            "Refund for the days I had no internet": 30,
        },
        start=_d("2026-08-19"), end=_d("2026-09-17"), decay_days=6,
        outcomes={"resolved": 85, "unresolved": 15}, regions=("northeast",),
    ),
    Stream(
        "outage-cancels", 0.3,
        reasons={"account.cancel": 70, "account.cancel_request": 30},
        channels=PHONE_HEAVY,
        texts={"Cancelling after the outage": 55, "Three days without service, I'm done": 45},
        start=_d("2026-08-18"), end=_d("2026-09-16"), decay_days=8,
        outcomes=CANCEL, regions=("northeast",), handle_factor=1.2,
    ),
    # courier-switch (logistics, 2026-09-01)
    Stream(
        "courier-delays", 1.3,
        reasons={"orders.delivery_late": 60, "orders.delivery_status": 40},
        channels={"phone": 45, "chat": 35, "email": 15, "sms": 5},
        texts={
            "My phone delivery is late": 35, "Tracking not updated for 5 days": 25,
            "ParcelNow says delivered, it wasn't": 20, "Where is my new phone?": 20,
        },
        start=_d("2026-09-03"), decay_days=50, floor=0.4, products={"devices": 1},
        repeat_rate=0.12,
    ),
    Stream(
        "courier-lost", 0.45,
        reasons={"orders.lost_parcel": 50, "general.inquiry": 30, None: 20},
        channels={"phone": 45, "chat": 30, "email": 25},
        texts={
            "Parcel marked delivered but not delivered": 30, "Missing package: new phone": 25,
            "Lost parcel with my router": 20, "My order never arrived": 25,
        },
        start=_d("2026-09-06"), decay_days=60, floor=0.4,
        products={"devices": 90, "fiber": 10},
        outcomes={"escalated": 30, "unresolved": 30, "resolved": 40}, handle_factor=1.3,
    ),
    # esim-launch (digital, 2026-09-08)
    Stream(
        "esim-activation", 1.4,
        reasons={"device.esim_activation": 70, "device.esim_transfer": 30},
        channels=DIGITAL,
        texts={
            "eSIM QR code not scanning": 35, "eSIM activation stuck": 40,
            "eSIM not working after setup": 25,
        },
        texts_by_reason={
            "device.esim_transfer": {
                "Move my eSIM to a new phone": 2, "eSIM lost after phone reset": 1,
            },
        },
        start=_d("2026-09-08"), decay_days=35, floor=0.25, plans=MOBILE_PLANS,
        products={"mobile": 1}, handle_factor=1.1,
    ),
    Stream(
        "esim-port", 0.4,
        reasons={"account.port_in": 50, "sales.port_in": 50},
        channels={"phone": 40, "chat": 50, "messaging": 10},
        texts={
            "Port my number to an eSIM": 40, "QR code for my eSIM port-in": 30,
            "Transfer my number, eSIM-only phone": 30,
        },
        start=_d("2026-09-08"), decay_days=40, floor=0.3,
        outcomes=SALES, plans=MOBILE_PLANS, sale_value=300.0,
    ),
    # legacy-plan-sunset (pricing, 2026-10-01)
    Stream(
        "legacy-moves", 0.9,
        reasons={
            "account.plan_change": 60, "account.plan_change_forced": 20,
            "device.compatibility": 20,
        },
        channels=PHONE_HEAVY,
        texts={
            "My 3G plan is being retired": 40, "Need a 4G phone for the new plan": 30,
            "Which plan replaces Legacy 3G?": 30,
        },
        start=_d("2026-10-01"), decay_days=30, floor=0.3,
        outcomes={"sale": 30, "resolved": 55, "unresolved": 15},
        plans=("legacy_3g",), handle_factor=1.3, sale_value=240.0,
    ),
    Stream(
        "legacy-notices", 0.35,
        reasons={None: 60, "general.inquiry": 40},
        channels={"email": 60, "sms": 40},
        texts={
            "Got a 3G shutdown notice": 40, "Is the network shutdown affecting me?": 35,
            "Reply: 3G retirement letter": 25,
        },
        start=_d("2026-10-01"), decay_days=25, floor=0.2,
    ),
    # black-friday-2026 (marketing, 2026-11-20 .. 2026-11-30)
    Stream(
        "black-friday-orders", 0.7,
        reasons={"orders.status": 40, "orders.delivery_status": 30, "orders.cancel_order": 30},
        channels=BASE_CHANNELS,
        texts={"Black Friday order status": 55, "When will my deal phone ship?": 45},
        texts_by_reason={
            "orders.cancel_order": {"Cancel my Black Friday order": 1},
        },
        start=_d("2026-11-20"), tags={"black-friday": 80, "black-friday|vip": 20},
        products={"devices": 1},
    ),
    Stream(
        "black-friday-sales", 0.7,
        reasons={"sales.device_upgrade": 50, "sales.new_line": 30, "sales.streaming_bundle": 20},
        channels={"phone": 45, "chat": 45, "messaging": 10},
        texts={"Black Friday phone deal": 55, "Doorbuster price on the new iPhone": 45},
        texts_by_reason={
            "sales.streaming_bundle": {"Add Harbor+ with the Black Friday offer": 1},
        },
        start=_d("2026-11-20"),
        tags={"black-friday": 60, "doorbuster": 25, "black-friday|doorbuster": 15},
        outcomes={"sale": 70, "resolved": 25, "unresolved": 5},
        handle_factor=1.2, sale_value=420.0, repeat_rate=0.03,
    ),
)

# fmt: on

STREAMS: tuple[Stream, ...] = BASE + BACKGROUND + DECISION_STREAMS

# --------------------------------------------------------------------------- randomness

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _mix_int(x: int) -> int:
    """SplitMix64's finaliser on a Python int (for salts)."""
    x &= _MASK
    x = ((x ^ (x >> 30)) * _M1) & _MASK
    x = ((x ^ (x >> 27)) * _M2) & _MASK
    return x ^ (x >> 31)


def _u64(value: int) -> pl.Expr:
    return pl.lit(value, dtype=pl.UInt64)


def _mix(x: pl.Expr) -> pl.Expr:
    """The same finaliser as a polars expression (UInt64 arithmetic wraps)."""
    x = (x ^ (x // _u64(1 << 30))) * _u64(_M1)
    x = (x ^ (x // _u64(1 << 27))) * _u64(_M2)
    return x ^ (x // _u64(1 << 31))


def _salt(seed: int, stream: int, column: int) -> int:
    """A distinct, well-mixed constant for every (seed, stream, column)."""
    return _mix_int(_mix_int(_mix_int(seed) ^ (stream << 20)) ^ column)


def _uniform(key: pl.Expr, salt: int) -> pl.Expr:
    """A uniform draw in (0, 1), never 0 (logs are taken), from a UInt64 row key."""
    bits = _mix(key * _u64(_GAMMA) + _u64(salt))
    return ((bits // _u64(1 << 11)).cast(pl.Float64) + 0.5) * 2.0**-53


def _breaks(weights: Sequence[float]) -> pl.Series:
    """Cumulative weights for `search_sorted(u, side="right")`: index i with probability w_i.

    Past the last positive weight the breaks are 2.0, so float rounding can
    never pick a trailing zero-weight entry.
    """
    total = sum(weights)
    last = max(i for i, w in enumerate(weights) if w > 0)
    out: list[float] = []
    acc = 0.0
    for i, w in enumerate(weights[:-1]):
        acc += w
        out.append(acc / total if i < last else 2.0)
    return pl.Series(out, dtype=pl.Float64)


def _index(u: pl.Expr, weights: Sequence[float]) -> pl.Expr:
    return pl.lit(_breaks(weights)).search_sorted(u, side="right").cast(pl.Int64)


def _pick(u: pl.Expr, weights: Weights) -> pl.Expr:
    """A label drawn with the given weights (a None label gives null)."""
    labels = pl.Series(list(weights), dtype=pl.String)
    return pl.lit(labels).gather(_index(u, list(weights.values())))


def _pick_tags(u: pl.Expr, weights: Weights) -> pl.Expr:
    """A list of tags; the label "a|b" is the list [a, b], "" the empty list."""
    lists = [[t for t in (label or "").split("|") if t] for label in weights]
    values = pl.Series(lists, dtype=pl.List(pl.String))
    return pl.lit(values).gather(_index(u, list(weights.values())))


def _text(u: pl.Expr, stream: Stream) -> pl.Expr:
    """A subject line that fits the contact's reason (texts_by_reason), else from `texts`."""
    text = _pick(u, stream.texts) if stream.texts else pl.lit(None, dtype=pl.String)
    for reason, weights in stream.texts_by_reason.items():
        text = pl.when(pl.col("reason") == reason).then(_pick(u, weights)).otherwise(text)
    return text


def _normal_pair(u1: pl.Expr, u2: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Two independent standard normals (Box-Muller)."""
    radius = (u1.log() * -2.0).sqrt()
    angle = u2 * (2.0 * math.pi)
    return radius * angle.cos(), radius * angle.sin()


def _allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` in proportion to weights, exactly (largest remainder)."""
    whole = sum(weights)
    quotas = [total * w / whole for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


# --------------------------------------------------------------------------- time


def _daily_weights(stream: Stream) -> list[float]:
    """Relative volume of `stream` on each local day of the span."""
    out: list[float] = []
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        if day < stream.start or day > stream.end:
            out.append(0.0)
            continue
        age = (day - stream.start).days
        level = 1.0
        if stream.decay_days is not None:
            level = stream.floor + (1.0 - stream.floor) * math.exp(-age / stream.decay_days)
        if stream.ramp_days is not None:
            level *= 1.0 - math.exp(-(age + 1) / stream.ramp_days)
        if stream.weekly:
            level *= WEEKDAY[day.weekday()]
        if stream.seasonal:
            level *= MONTH[day.month] * (
                BASE_TREND[0] + (BASE_TREND[1] - BASE_TREND[0]) * d / (DAYS - 1)
            )
        if stream.billing_cycle:
            level *= 1.6 if 3 <= day.day <= 12 else 0.7
        out.append(level * HOLIDAYS.get(day, 1.0))
    return out


def _order_day_weights() -> list[float]:
    """Purchases peak around the holidays and the September phone launches."""
    season = {9: 1.2, 10: 1.0, 11: 1.35, 12: 1.5, 1: 0.9}
    out: list[float] = []
    for d in range(ORDER_DAYS):
        day = ORDERS_FIRST_DAY + timedelta(days=d)
        weekday = 1.0 if day.weekday() < 5 else 1.15
        out.append(weekday * season.get(day.month, 0.95) * HOLIDAYS.get(day, 1.0))
    return out


def _local_micros(first: date) -> int:
    """Microseconds from the epoch to local midnight of `first`, read as naive."""
    return (datetime.combine(first, time()) - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def _to_utc(local_us: pl.Expr) -> pl.Expr:
    """Naive local microseconds -> UTC timestamps, moving DST-gap times an hour on."""
    naive = local_us.cast(pl.Datetime("us"))
    shifted = (local_us + 3_600 * 10**6).cast(pl.Datetime("us"))
    zoned = naive.dt.replace_time_zone(TIMEZONE, ambiguous="earliest", non_existent="null")
    fallback = shifted.dt.replace_time_zone(TIMEZONE, ambiguous="earliest", non_existent="null")
    return zoned.fill_null(fallback).dt.convert_time_zone("UTC")


def _end_utc() -> datetime:
    """The first instant after the span (local midnight after LAST_DAY), in UTC."""
    after = LAST_DAY + timedelta(days=1)
    local = datetime(after.year, after.month, after.day, tzinfo=ZoneInfo(TIMEZONE))
    return local.astimezone(UTC)


# --------------------------------------------------------------------------- contacts


def _customers(count: int, seed: int) -> pl.DataFrame:
    """Customers with a fixed region and plan; contacts inherit them."""
    key = pl.col("k")
    return (
        pl.DataFrame({"k": pl.int_range(count, dtype=pl.UInt64, eager=True)})
        .with_columns(
            region=_pick(_uniform(key, _salt(seed, 0xC0, 1)), REGIONS),
            plan=_pick(_uniform(key, _salt(seed, 0xC0, 2)), PLANS),
        )
        .with_columns(
            customer_id=pl.format("HL{}", (key + 1).cast(pl.String).str.zfill(7)),
            home=pl.col("plan").replace_strict(HOME_PRODUCT, return_dtype=pl.String),
        )
        .select("customer_id", "region", "plan", "home")
    )


def _pool(customers: pl.DataFrame, stream: Stream) -> pl.DataFrame:
    """The customers a stream may draw from (a plan or region it is about)."""
    pool = customers
    if stream.plans is not None:
        pool = pool.filter(pl.col("plan").is_in(stream.plans))
    if stream.regions is not None:
        pool = pool.filter(pl.col("region").is_in(stream.regions))
    return pool


def _stream_contacts(
    stream: Stream, number: int, rows: int, seed: int, pool: pl.DataFrame
) -> pl.DataFrame:
    """`rows` contacts of one stream, with local time still as naive microseconds."""
    key = pl.col("k")

    def u(column: int) -> pl.Expr:
        return _uniform(key, _salt(seed, number, column))

    frame = pl.DataFrame({"k": pl.int_range(rows, dtype=pl.UInt64, eager=True)})
    frame = frame.with_columns(
        day=_index(u(1), _daily_weights(stream)),
        channel=_pick(u(2), stream.channels),
        reason=_pick(u(3), stream.reasons),
        tags=_pick_tags(u(5), stream.tags),
        outcome=_pick(u(6), stream.outcomes),
        cidx=(u(7).pow(CUSTOMER_SKEW) * pool.height).floor().cast(pl.Int64),
    )
    frame = frame.with_columns(text=_text(u(4), stream))
    frame = frame.hstack(pool.select(pl.all().gather(frame["cidx"])))
    product = pl.col("home") if stream.products is None else _pick(u(8), stream.products)
    anonymous_rate = (
        pl.when(pl.col("channel") == "social")
        .then(pl.lit(max(stream.anonymous, 0.3)))
        .otherwise(pl.lit(stream.anonymous))
    )
    anonymous = u(9) < anonymous_rate
    frame = frame.with_columns(
        product=product,
        customer_id=pl.when(anonymous).then(None).otherwise(pl.col("customer_id")),
        plan=pl.when(anonymous).then(None).otherwise(pl.col("plan")),
    )

    # Follow-ups: an odd row may repeat the row before it (never a follow-up
    # itself) a few days later, same customer and issue, any channel.
    new_day = pl.col("day").shift(1) + _index(u(10), REPEAT_DELAY)
    follow = (
        ((key % 2) == 1) & (u(11) < 2.0 * stream.repeat_rate) & (new_day <= DAYS - 1)
    ).fill_null(False)
    copied = ("customer_id", "region", "plan", "product", "reason", "text", "tags")
    frame = frame.with_columns(
        [pl.when(follow).then(pl.col(c).shift(1)).otherwise(pl.col(c)).alias(c) for c in copied]
        + [pl.when(follow).then(new_day).otherwise(pl.col("day")).alias("day")]
    )

    live = pl.col("channel").is_in(LIVE_CHANNELS)
    hour = pl.when(live).then(_index(u(12), LIVE_HOURS)).otherwise(_index(u(12), ASYNC_HOURS))
    second = (u(13) * 3600.0).floor().cast(pl.Int64)
    z_handle, z_money = _normal_pair(u(14), u(15))
    median = pl.col("channel").replace_strict(HANDLE_MEDIAN, default=300.0, return_dtype=pl.Float64)
    handle = (median * stream.handle_factor * (z_handle * HANDLE_SIGMA).exp()).clip(15.0, 5400.0)
    revenue = (
        pl.when(pl.col("outcome") == "sale")
        .then((stream.sale_value * (z_money * 0.45).exp()).round(2))
        .when((pl.col("outcome") == "saved") & (u(16) < SAVE_UPSELL_RATE))
        .then((SAVE_UPSELL * (z_money * 0.4).exp()).round(2))
        .otherwise(None)
    )
    local_us = (
        _local_micros(FIRST_DAY) + pl.col("day") * 86_400 * 10**6 + (hour * 3600 + second) * 10**6
    )
    return frame.select(
        local_us.alias("local_us"),
        pl.lit(number, dtype=pl.UInt16).alias("stream"),
        "k",
        "channel",
        "reason",
        "tags",
        "text",
        handle.round().cast(pl.Int32).alias("handle_seconds"),
        "customer_id",
        "product",
        "region",
        "outcome",
        revenue.cast(pl.Float64).alias("revenue"),
        "plan",
    )


CONTACT_SCHEMA_ORDER = (
    "contact_id", "started_at", "channel", "reason", "tags", "text", "handle_seconds",
    "customer_id", "product", "region", "outcome", "revenue", "plan",
)  # fmt: skip


def build_contacts(contacts: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All contacts in time order with ids, and the customer table they came from."""
    customers = _customers(max(50, round(contacts * CUSTOMERS_PER_CONTACT)), seed)
    counts = _allocate(contacts, [s.weight for s in STREAMS])
    pools: dict[tuple[tuple[str, ...] | None, tuple[str, ...] | None], pl.DataFrame] = {}
    frames: list[pl.DataFrame] = []
    for number, (stream, rows) in enumerate(zip(STREAMS, counts, strict=True)):
        if rows == 0:
            continue
        group = (stream.plans, stream.regions)
        if group not in pools:
            pools[group] = _pool(customers, stream)
        frames.append(_stream_contacts(stream, number, rows, seed, pools[group]))
    if not frames:  # zero contacts: still the right columns
        frames.append(_stream_contacts(STREAMS[0], 0, 1, seed, customers).clear())
    table = (
        pl.concat(frames)
        .with_columns(started_at=_to_utc(pl.col("local_us")))
        .sort("started_at", "stream", "k")
        .with_row_index("n", offset=1)
        .with_columns(contact_id=pl.format("CT{}", pl.col("n").cast(pl.String).str.zfill(8)))
        .select(CONTACT_SCHEMA_ORDER)
    )
    return table, customers


# --------------------------------------------------------------------------- orders


def build_orders(contacts: pl.DataFrame, customers: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Orders that answer SPEC 7: good contacts are followed by purchases, bad ones by fewer.

    Base orders are spread over the customers and 18 months (six before the
    contacts, so saves have a purchase history); after a customer's first bad
    contact some of their later orders vanish; each well-handled contact may
    add an order within weeks.
    """
    key = pl.col("k")

    def u(stream: int, column: int) -> pl.Expr:
        return _uniform(key, _salt(seed, stream, column))

    n_customers = customers.height
    base_rows = round(ORDERS_PER_CUSTOMER * n_customers)
    z_base, _ = _normal_pair(u(0xB0, 4), u(0xB0, 5))
    base = pl.DataFrame({"k": pl.int_range(base_rows, dtype=pl.UInt64, eager=True)}).select(
        pl.format(
            "HL{}",
            ((u(0xB0, 1) * n_customers).floor().cast(pl.Int64) + 1).cast(pl.String).str.zfill(7),
        ).alias("customer_id"),
        _to_utc(
            _local_micros(ORDERS_FIRST_DAY)
            + _index(u(0xB0, 2), _order_day_weights()) * 86_400 * 10**6
            + ((8 * 3600 + u(0xB0, 3) * 14 * 3600).floor().cast(pl.Int64)) * 10**6
        ).alias("ordered_at"),
        (ORDER_MEDIAN * (z_base * 0.95).exp()).clip(4.99, 1899.0).round(2).alias("amount"),
        u(0xB0, 6).alias("drop_u"),
    )

    known = contacts.filter(pl.col("customer_id").is_not_null())
    first_bad = (
        known.filter(pl.col("outcome").is_in(list(LOST_AFTER)))
        .group_by("customer_id")
        .agg(
            pl.col("started_at").min().alias("bad_at"),
            pl.col("outcome").sort_by("started_at", "contact_id").first().alias("bad_outcome"),
        )
    )
    lost_chance = pl.col("bad_outcome").replace_strict(
        LOST_AFTER, default=0.0, return_dtype=pl.Float64
    )
    lost = (pl.col("ordered_at") > pl.col("bad_at")) & (pl.col("drop_u") < lost_chance)
    base = (
        base.join(first_bad, on="customer_id", how="left")
        .filter(~lost.fill_null(False))  # no bad contact: bad_at is null, the order stays
        .select("customer_id", "ordered_at", "amount")
    )

    z_extra, _ = _normal_pair(u(0xB1, 3), u(0xB1, 4))
    chance = pl.col("outcome").replace_strict(EXTRA_ORDER, default=0.0, return_dtype=pl.Float64)
    delay_us = (u(0xB1, 2).log() * (-EXTRA_ORDER_MEAN_DAYS * 86_400)).floor().cast(pl.Int64) * 10**6
    extra = (
        known.select("customer_id", "started_at", "outcome")
        .with_row_index("k")
        .with_columns(pl.col("k").cast(pl.UInt64))
        .filter(u(0xB1, 1) < chance)
        .select(
            "customer_id",
            (pl.col("started_at").cast(pl.Int64) + delay_us)
            .cast(pl.Datetime("us", "UTC"))
            .alias("ordered_at"),
            (EXTRA_ORDER_MEDIAN * (z_extra * 0.8).exp())
            .clip(4.99, 1899.0)
            .round(2)
            .alias("amount"),
        )
        .filter(pl.col("ordered_at") < _end_utc())
    )
    return pl.concat([base, extra]).sort("ordered_at", "customer_id", "amount")


# --------------------------------------------------------------------------- the workspace


def _copy_workspace(dest: Path) -> list[Path]:
    """Copy the packaged rules/ and chargeback.yaml into dest; return the rule files there."""
    source = sample_workspace()
    target_rules = dest / "rules"
    if dest.resolve() != source.resolve():
        for path in sorted((source / "rules").rglob("*")):
            if path.is_file() and path.suffix in (".yaml", ".yml"):
                target = target_rules / path.relative_to(source / "rules")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        shutil.copyfile(source / "chargeback.yaml", dest / "chargeback.yaml")
    return sorted(p for p in target_rules.rglob("*") if p.suffix in (".yaml", ".yml"))


def _count_items(files: Sequence[Path]) -> dict[str, int]:
    counts = {"rules": 0, "decisions": 0, "departments": 0}
    for path in files:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in counts:
            counts[key] += len(doc.get(key) or [])
    return counts


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """zstd, fixed row groups and no wall-clock metadata: same input, same bytes."""
    frame.write_parquet(
        path, compression="zstd", compression_level=9, statistics=True, row_group_size=250_000
    )


def generate_sample(dest: Path, contacts: int = 150_000, seed: int = 7) -> dict[str, int]:
    """Write a complete workspace into dest: rules/*.yaml, chargeback.yaml,
    sample_data/contacts.parquet, sample_data/orders.parquet. Return counts,
    e.g. {"contacts": n, "orders": m, "rules": k}.

    Same (contacts, seed) -> byte-identical Parquet files; `contacts` is the
    exact number of rows written.
    """
    if contacts < 0:
        raise ValueError(f"contacts must be >= 0 (got {contacts})")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rule_files = _copy_workspace(dest)
    table, customers = build_contacts(contacts, seed)
    orders = build_orders(table, customers, seed)
    data = dest / "sample_data"
    data.mkdir(parents=True, exist_ok=True)
    _write_parquet(table, data / "contacts.parquet")
    _write_parquet(orders, data / "orders.parquet")
    return {"contacts": table.height, "orders": orders.height, **_count_items(rule_files)}

"""The PII barrier: regex detectors with validation, and per-bank actions.

Each built-in detector is a *candidate* regular expression plus a validator, because a
regex alone cannot tell a card number from an order number: credit cards must pass the
Luhn check and carry a known issuer prefix, IBANs must have their country's length and
pass ISO 7064 mod-97, IP addresses must parse, and phone numbers must have one of a few
unambiguous shapes (international ``+``/``00`` prefix, North-American ``(415) 555-0132``
or ``415-555-0132``, or a national trunk ``0`` prefix with 9–11 digits). Dates, times,
version numbers and ids match none of those shapes.

Detectors run in priority order and a span claimed by one (an email) cannot be claimed
by a later one (a phone number inside it). The barrier runs on the normalised text
before chunking, so what it redacts never reaches chunks, the keyword index, the
vectors, the entity graph or the content hash.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from astrocyte.config.policy_schema import (
    BUILTIN_DETECTORS,
    DEFAULT_ON_DETECTORS,
    CustomPIIDetector,
    PIIAction,
    PIIConfig,
)
from astrocyte.errors import PIIRejected
from astrocyte.policy._match import bank_matches

Span = tuple[int, int]

# ---------------------------------------------------------------------------- email

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
    r"(?![\w-]|\.[A-Za-z0-9])"
)


# "logo@2x.png" is an image name, not an address.
_FILE_TLDS = frozenset("png jpg jpeg gif svg webp bmp ico pdf tif tiff heic avif".split())


def _find_email(text: str) -> Iterator[Span]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        if m.group().rsplit(".", 1)[1].lower() not in _FILE_TLDS:
            yield m.span()


# ---------------------------------------------------------------------------- phone

# Three shapes, tried as alternatives; each must stand alone (not glued to letters,
# digits, a '+', a dot or a dash, so ids like ORD-2024-555-0199 and dotted versions
# are out) and be followed by neither a word character nor more digits.
_PHONE = re.compile(
    r"(?<![\w+.\-/])(?:"
    # International: +CC or 00CC, then 2-6 groups (an optional (0) or (area) group).
    r"(?P<intl>(?:\+|00)[1-9]\d{0,2}(?:[ .\-]?\(\d{1,4}\))?(?:[ .\-]?\d{1,5}){1,6})"
    # North American: (415) 555-0132, 415-555-0132, 415.555.0132, 1-415-555-0132.
    r"|(?P<nanp>(?:1[ .\-])?(?:\(\d{3}\)[ ]?|\d{3}[ .\-])\d{3}[ .\-]\d{4})"
    # National with trunk prefix 0: 020 7946 0958, 06 12 34 56 78, 030/1234567.
    r"|(?P<trunk>(?:\(0\)[ ]?\d{1,4}|\(?0\d{1,4}\)?)(?:[ .\-/]?\d{2,8}){1,5})"
    # Bare 10-11 digits: accepted only after a word like "phone" or "call".
    r"|(?P<bare>\d{10,11})"
    r")(?![\w]|[.\-]?\d)"
)
_PHONE_CONTEXT = re.compile(
    r"\b(?:phone|tel|telephone|call|dial|mobile|cell|ring|whatsapp|text|sms|fax|landline)"
    r"(?:\s+(?:number|no\.?|#))?[\s:.#]*(?:is|at|on)?[\s:]*$",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")


def _find_phone(text: str) -> Iterator[Span]:
    if _DIGIT.search(text) is None:
        return
    for m in _PHONE.finditer(text):
        digits = sum(c.isdigit() for c in m.group())
        if m.group("intl") is not None:
            ok = 8 <= digits <= 15
            # "+" is unambiguous; "00" also starts zero-padded ids and serials, so the
            # text must say it is a phone number.
            if ok and m.group().startswith("00"):
                ok = _PHONE_CONTEXT.search(text, max(0, m.start() - 30), m.start()) is not None
        elif m.group("nanp") is not None:
            ok = True
        else:
            raw = m.group()
            # "00..." is an international prefix (handled above) or a zero-padded id.
            ok = 9 <= digits <= 11 and not raw.startswith("00")
            # A bare run of digits is a phone number only when the text says so.
            if ok and raw.isdigit():
                ok = _PHONE_CONTEXT.search(text, max(0, m.start() - 30), m.start()) is not None
        if ok:
            yield m.span()


# ---------------------------------------------------------------------------- credit card

_CARD = re.compile(r"(?<![\w.\-])\d(?:[ \-]?\d){12,18}(?![\w]|[.\-]?\d)")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check digit test of card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_issuer_known(digits: str) -> bool:
    """Whether the number starts with a major issuer's prefix (IIN) and has one of
    that scheme's lengths: Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if digits.startswith("6011") or two == 65 or 644 <= int(digits[:3]) <= 649:
        return 16 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19
    if two == 62:
        return 16 <= n <= 19
    return False


def _card_grouping_ok(raw: str) -> bool:
    """Printed cards are contiguous or grouped 4-4-4-4(-3), 4-6-5 (Amex) or 4-6-4
    (Diners), with one kind of separator."""
    seps = {c for c in raw if not c.isdigit()}
    if not seps:
        return True
    if len(seps) > 1:
        return False
    groups = [len(g) for g in raw.split(seps.pop())]
    if groups in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4


def _find_card(text: str) -> Iterator[Span]:
    if _DIGIT.search(text) is None:
        return
    for m in _CARD.finditer(text):
        raw = m.group()
        digits = "".join(c for c in raw if c.isdigit())
        if _card_grouping_ok(raw) and _card_issuer_known(digits) and luhn_valid(digits):
            yield m.span()


# ---------------------------------------------------------------------------- IBAN

#: IBAN length per country (ISO 13616 registry).
IBAN_LENGTHS: Mapping[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

# Greedy over up to 8 groups; the country's length then decides where the IBAN ends,
# so a short uppercase word after it ("... 3000 EUR") is not swallowed.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{1,4}){3,8}")


def iban_valid(compact: str) -> bool:
    """ISO 7064 mod-97-10: move the first four characters to the end, letters to
    numbers (A=10 ... Z=35); the number mod 97 must be 1."""
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _find_iban(text: str) -> Iterator[Span]:
    if _DIGIT.search(text) is None:
        return
    for m in _IBAN.finditer(text):
        raw = m.group()
        expected = IBAN_LENGTHS.get(raw[:2])
        if expected is None:
            continue
        taken = 0
        end = m.start()
        for i, ch in enumerate(raw):
            if ch != " ":
                taken += 1
            if taken == expected:
                end = m.start() + i + 1
                break
        else:
            continue
        # The country length must end the number, not cut a glued word in two.
        if end < len(text) and text[end].isalnum():
            continue
        compact = text[m.start() : end].replace(" ", "")
        if compact[4:].isalnum() and iban_valid(compact):
            yield (m.start(), end)


# ---------------------------------------------------------------------------- IP

_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?![\w]|\.\d)"
)
# Words that announce a dotted number as a version, not an address.
_VERSION_CONTEXT = re.compile(
    r"(?:\b(?:version|release|build|ver\.?|v|rev|revision|patch|hotfix|update|upgrade|"
    r"firmware|section|chapter|clause|figure|table|step)|§)\s*$",
    re.IGNORECASE,
)


def _find_ipv4(text: str) -> Iterator[Span]:
    if "." not in text:
        return
    for m in _IPV4.finditer(text):
        if _VERSION_CONTEXT.search(text, max(0, m.start() - 12), m.start()):
            continue
        yield m.span()


_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4})"
    r"(?![\w:]|\.\d)"
)


def _find_ipv6(text: str) -> Iterator[Span]:
    if "::" not in text and text.count(":") < 7:
        return
    for m in _IPV6.finditer(text):
        raw = m.group()
        try:
            ipaddress.IPv6Address(raw)
        except ValueError:
            continue
        groups = [g for g in re.split(r"[:.]", raw) if g]
        # "::1" and C++-style "a::b" parse, but are not somebody's address.
        if len(groups) >= 2 and sum(len(g) for g in groups) >= 4:
            yield m.span()


# ---------------------------------------------------------------------------- national ids

_US_SSN = re.compile(r"(?<![\w\-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w\-]|\.\d)")


def _find_us_ssn(text: str) -> Iterator[Span]:
    if "-" not in text:
        return
    for m in _US_SSN.finditer(text):
        yield m.span()


# ---------------------------------------------------------------------------- detectors


@dataclass(frozen=True, slots=True)
class Detector:
    """A named PII detector: ``find(text)`` yields ``(start, end)`` spans."""

    name: str
    placeholder: str
    find: Callable[[str], Iterator[Span]]


_BUILTINS: dict[str, Detector] = {
    d.name: d
    for d in (
        Detector("email", "[EMAIL]", _find_email),
        Detector("iban", "[IBAN]", _find_iban),
        Detector("credit_card", "[CREDIT_CARD]", _find_card),
        Detector("ipv6", "[IPV6]", _find_ipv6),
        Detector("ipv4", "[IPV4]", _find_ipv4),
        Detector("us_ssn", "[US_SSN]", _find_us_ssn),
        Detector("phone", "[PHONE]", _find_phone),
    )
}
assert set(_BUILTINS) == set(BUILTIN_DETECTORS)

#: Detectors run in this order; phone comes last because its shapes are the loosest,
#: custom detectors just before it.
_PRIORITY = ("email", "iban", "credit_card", "ipv6", "ipv4", "us_ssn")


def builtin_detector(name: str) -> Detector:
    """The built-in detector called ``name``."""
    return _BUILTINS[name]


def custom_detector(spec: CustomPIIDetector) -> Detector:
    """A detector from a ``policy.pii.custom`` entry."""
    compiled = re.compile(spec.pattern, re.IGNORECASE if spec.ignore_case else 0)

    def find(text: str) -> Iterator[Span]:
        for m in compiled.finditer(text):
            if m.end() > m.start():
                yield m.span()

    return Detector(spec.name, spec.placeholder or f"[{spec.name.upper()}]", find)


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected piece of PII: which detector and where (no copy of the value)."""

    kind: str
    start: int
    end: int


def detect(text: str, detectors: list[Detector]) -> list[Finding]:
    """Non-overlapping findings of ``detectors`` (in priority order: an earlier
    detector's span wins over a later overlapping one), sorted by position."""
    accepted: list[Finding] = []
    for detector in detectors:
        for start, end in detector.find(text):
            if any(start < f.end and f.start < end for f in accepted):
                continue
            accepted.append(Finding(detector.name, start, end))
    accepted.sort(key=lambda f: f.start)
    return accepted


@dataclass(slots=True)
class ScanResult:
    """Text after redaction and how many findings of each kind were redacted."""

    text: str
    redacted: dict[str, int] = field(default_factory=dict)


class BankPIIPlan:
    """The detectors that run for one bank and what each does on a finding."""

    def __init__(
        self, bank_id: str, detectors: list[Detector], actions: Mapping[str, PIIAction]
    ) -> None:
        self.bank_id = bank_id
        self.detectors = detectors
        self.actions = actions
        self.placeholders = frozenset(d.placeholder.strip("[]") for d in detectors)

    def scan(self, text: str, field_name: str) -> ScanResult:
        """Redact ``text``; raise :class:`PIIRejected` naming ``field_name`` if a
        finding's action is ``reject``."""
        findings = detect(text, self.detectors)
        if not findings:
            return ScanResult(text)
        rejected = sorted({f.kind for f in findings if self.actions[f.kind] == "reject"})
        if rejected:
            raise PIIRejected(field_name, rejected, self.bank_id)
        placeholders = {d.name: d.placeholder for d in self.detectors}
        parts: list[str] = []
        counts: dict[str, int] = {}
        cursor = 0
        for f in findings:
            if self.actions[f.kind] != "redact":
                continue
            parts.append(text[cursor : f.start])
            parts.append(placeholders[f.kind])
            counts[f.kind] = counts.get(f.kind, 0) + 1
            cursor = f.end
        if not counts:
            return ScanResult(text)
        parts.append(text[cursor:])
        return ScanResult("".join(parts), counts)


class PIIBarrier:
    """Resolves the PII config into a :class:`BankPIIPlan` per bank (cached)."""

    def __init__(self, config: PIIConfig) -> None:
        self._config = config
        self._custom = {c.name: custom_detector(c) for c in config.custom}
        self._default_on = [*DEFAULT_ON_DETECTORS, *self._custom]
        self._plans: dict[str, BankPIIPlan | None] = {}
        self.scan_metadata = config.scan_metadata
        # With every action "allow" there is nothing to do for any bank.
        self.active = self._could_act()

    def _could_act(self) -> bool:
        c = self._config
        layers: list[tuple[PIIAction | None, dict[str, PIIAction]]] = [(c.action, c.detectors)]
        layers += [(rule.action, rule.detectors) for rule in c.banks]
        return any(
            (action not in (None, "allow")) or any(a != "allow" for a in detectors.values())
            for action, detectors in layers
        )

    def actions_for(self, bank_id: str) -> dict[str, PIIAction]:
        """The resolved action of every detector in ``bank_id`` (see
        :class:`~astrocyte.config.policy_schema.PIIConfig` for the layering)."""
        c = self._config
        actions: dict[str, PIIAction] = {}
        layers: list[tuple[PIIAction | None, dict[str, PIIAction]]] = [(c.action, c.detectors)]
        layers += [
            (rule.action, rule.detectors) for rule in c.banks if bank_matches(rule.banks, bank_id)
        ]
        for action, detectors in layers:
            if action is not None:
                for name in self._default_on:
                    actions[name] = action
            actions.update(detectors)
        return actions

    def plan(self, bank_id: str) -> BankPIIPlan | None:
        """What runs for ``bank_id``; ``None`` when every detector allows."""
        if not self.active:
            return None
        if bank_id in self._plans:
            return self._plans[bank_id]
        actions = {n: a for n, a in self.actions_for(bank_id).items() if a != "allow"}
        plan: BankPIIPlan | None = None
        if actions:
            order = [n for n in _PRIORITY if n in actions]
            order += [n for n in self._custom if n in actions]
            if "phone" in actions:
                order.append("phone")
            detectors = [self._custom.get(n) or _BUILTINS[n] for n in order]
            plan = BankPIIPlan(bank_id, detectors, actions)
        if len(self._plans) >= 4096:
            self._plans.clear()
        self._plans[bank_id] = plan
        return plan


def all_detectors(custom: list[CustomPIIDetector] | None = None) -> list[Detector]:
    """Every built-in detector (opt-in ones included) plus ``custom``, in the order
    the barrier runs them."""
    order = [_BUILTINS[n] for n in _PRIORITY]
    order += [custom_detector(c) for c in custom or []]
    order.append(_BUILTINS["phone"])
    return order

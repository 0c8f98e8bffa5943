"""Money as India writes it: integer paise inside, rupees with Indian digit grouping outside."""

from __future__ import annotations


def group_indian(number: int) -> str:
    """Digits grouped the Indian way: 530000 → ``5,30,000``; 12345678 → ``1,23,45,678``."""
    sign, digits = ("-", str(-number)) if number < 0 else ("", str(number))
    if len(digits) <= 3:
        return sign + digits
    head, tail = digits[:-3], digits[-3:]
    groups: list[str] = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    return sign + ",".join([*groups, tail])


def format_rupees(paise: int) -> str:
    """₹ amount with Indian digit grouping: 12345678 paise → ``₹1,23,456.78``."""
    sign = "-" if paise < 0 else ""
    rupees, rest = divmod(abs(int(paise)), 100)
    return f"{sign}₹{group_indian(rupees)}.{rest:02d}"


__all__ = ["format_rupees", "group_indian"]

"""Orders for a small online shop: prices, discounts, CSV import and a daily revenue report."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

CURRENCY = "€"
VAT_RATE = Decimal("0.20")


@dataclass
class Customer:
    """Someone who orders; the e-mail address is the key."""

    email: str
    name: str
    vip: bool = False


@dataclass
class OrderLine:
    sku: str
    quantity: int
    unit_price: Decimal

    def subtotal(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass
class Order:
    number: int
    customer: Customer
    placed: date
    lines: list[OrderLine] = field(default_factory=list)

    def add_line(self, sku: str, quantity: int, unit_price: Decimal) -> None:
        if quantity <= 0:
            raise ValueError(f"quantity must be positive, got {quantity}")
        self.lines.append(OrderLine(sku, quantity, unit_price))

    def net_total(self) -> Decimal:
        return sum((line.subtotal() for line in self.lines), Decimal(0))

    def gross_total(self) -> Decimal:
        return (self.net_total() * (1 + VAT_RATE)).quantize(Decimal("0.01"))


def discount(order: Order) -> Decimal:
    """VIP customers get 10% off orders over 100 €; everyone else pays the full price."""
    if order.customer.vip and order.net_total() > 100:
        return order.net_total() * Decimal("0.10")
    return Decimal(0)


def load_orders(path: Path, customers: dict[str, Customer]) -> list[Order]:
    """Read orders from a CSV file with columns number, email, placed, sku, quantity, unit_price."""
    orders: dict[int, Order] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            number = int(row["number"])
            if number not in orders:
                customer = customers[row["email"]]
                orders[number] = Order(number, customer, date.fromisoformat(row["placed"]))
            orders[number].add_line(row["sku"], int(row["quantity"]), Decimal(row["unit_price"]))
    return list(orders.values())


def revenue_by_day(orders: list[Order]) -> dict[date, Decimal]:
    totals: dict[date, Decimal] = defaultdict(Decimal)
    for order in orders:
        totals[order.placed] += order.gross_total() - discount(order)
    return dict(totals)


def report(orders: list[Order]) -> str:
    """One line per day, oldest first, e.g. `2024-05-01     1234.50 €`."""
    lines = []
    for day, total in sorted(revenue_by_day(orders).items()):
        lines.append(f"{day.isoformat()}  {total:>10.2f} {CURRENCY}")
    return "\n".join(lines)


def main() -> None:
    customers = {c.email: c for c in [Customer("ana@example.com", "Ana", vip=True)]}
    orders = load_orders(Path("orders.csv"), customers)
    print(report(orders))


if __name__ == "__main__":
    main()

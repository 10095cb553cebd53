"""A small inventory of parts, with reorder rules."""

from dataclasses import dataclass, field


@dataclass
class Part:
    sku: str
    name: str
    quantity: int = 0
    reorder_level: int = 5
    tags: list = field(default_factory=list)

    def needs_reorder(self):
        return self.quantity <= self.reorder_level


class Inventory:
    def __init__(self):
        self._parts = {}

    def add(self, part):
        if part.sku in self._parts:
            raise KeyError("duplicate sku: %s" % part.sku)
        self._parts[part.sku] = part

    def take(self, sku, count=1):
        part = self._parts[sku]
        if count > part.quantity:
            raise ValueError("only %d of %s left" % (part.quantity, sku))
        part.quantity -= count
        return part

    def restock(self, sku, count):
        self._parts[sku].quantity += count

    def low_stock(self):
        return sorted(p.sku for p in self._parts.values() if p.needs_reorder())

    def __len__(self):
        return len(self._parts)

    def __iter__(self):
        return iter(sorted(self._parts.values(), key=lambda p: p.sku))

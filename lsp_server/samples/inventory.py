"""A small inventory module: the file `speclsp demo` types into."""

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Item:
    name: str
    price: float
    quantity: int = 0
    tags: list[str] = field(default_factory=list)

    def total(self) -> float:
        return self.price * self.quantity


class Inventory:
    def __init__(self):
        self.items: dict[str, Item] = {}

    def add(self, item: Item) -> None:
        if item.name in self.items:
            raise ValueError(f"duplicate item: {item.name}")
        self.items[item.name] = item

    def remove(self, name: str) -> Item:
        return self.items.pop(name)

    def value(self) -> float:
        return sum(item.total() for item in self.items.values())

    def save(self, path: Path) -> None:
        data = [vars(item) for item in self.items.values()]
        path.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: Path) -> "Inventory":
        inventory = cls()
        for row in json.loads(path.read_text()):
            inventory.add(Item(**row))
        return inventory


def main():
    inventory = Inventory()
    inventory.add(Item("apple", 0.5, 10))
    print(inventory.value())


if __name__ == "__main__":
    main()

// Where and what the harness types into workspace/orders.py, bottom of the file first, so the line
// numbers (those of the file as committed) stay true while edits above them have not happened yet.
//
// A burst: go to `line` (1-based), End, `left` characters back; Enter first when `newLine`; type
// `text` at `msPerKey` (a newline is Enter). `thenGhost`: once a ghost text is on screen, type on:
// its first N characters (`{ chars: N }`: typing into the suggestion) or other text (`{ text }`).
// `accept`: press Tab once the ghost text has settled.

export const FILE = "orders.py";

export const BURSTS = [
  { name: "main: sum over orders", line: 92, newLine: true, msPerKey: 50, accept: true,
    text: "total = sum(order.gross_total() for order in " },
  { name: "main: second customer, mid-line", line: 90, left: 2, msPerKey: 150,
    text: ', Customer("bo@example.com", "Bo"' },
  { name: "report: guard for no orders", line: 83, newLine: true, msPerKey: 150,
    text: 'if not orders:\nreturn "' },
  { name: "revenue: skip, typing into the ghost text", line: 76, newLine: true, msPerKey: 50, accept: true,
    text: "if order.customer.", thenGhost: { chars: 3 } },
  { name: "load: skip empty rows", line: 65, newLine: true, msPerKey: 150, accept: true,
    text: "if not row[" },
  { name: "discount: staff e-mail", line: 55, newLine: true, msPerKey: 50, accept: true,
    text: "if order.customer.email.endswith(" },
  { name: "Order: new method, body on a new line", line: 51, newLine: true, msPerKey: 50, accept: true,
    text: "\ndef item_count(self) -> int:\n" },
  { name: "Order: new field", line: 40, newLine: true, msPerKey: 150, accept: true,
    text: "note: str = " },
  { name: "OrderLine: method, typing on after a ghost text", line: 32, newLine: true, msPerKey: 150,
    text: "\ndef total_with_vat(self", thenGhost: { text: ") -> Decimal:" } },
  { name: "Customer: new field", line: 22, newLine: true, msPerKey: 50, accept: true,
    text: "phone: str" },
  { name: "constants: shipping fee", line: 13, newLine: true, msPerKey: 150, accept: true,
    text: "SHIPPING_FEE = Decimal(" },
  { name: "imports: typing", line: 10, newLine: true, msPerKey: 50, accept: true,
    text: "from typing import " },
];

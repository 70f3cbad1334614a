"""Realistic caller schemas for Extract: served ones with hand-written outputs, refused ones
with the exact violation they get.

A served case gives an output valid against the caller's original schema (``valid``), the
same output as the lowered wire schema shapes it (``wire``, when lowering changed the shape),
and outputs that break one dropped rule each, with the start of the message naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DRAFT7 = "http://json-schema.org/draft-07/schema#"
JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Served:
    name: str
    schema: JsonObject
    text: str
    valid: JsonObject
    wire: JsonObject | None = None
    broken: tuple[tuple[JsonObject, str], ...] = field(default=())


@dataclass(frozen=True)
class Refused:
    name: str
    schema: Any
    field: str
    says: str


def obj(properties: JsonObject, required: list[str] | None = None, **more: Any) -> JsonObject:
    return {"type": "object", "properties": properties, "required": required or [], **more}


ADDRESS = obj(
    {
        "street": {"type": "string"},
        "city": {"type": "string"},
        "postal_code": {"type": "string", "pattern": "^[0-9]{5}(-[0-9]{4})?$"},
        "country": {"type": "string", "minLength": 2, "maxLength": 2},
    },
    ["street", "city", "country"],
)
ADDRESS_OK = {"street": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}

SERVED: list[Served] = [
    Served(
        "invoice",
        obj(
            {
                "invoice_number": {"type": "string", "pattern": "^INV-[0-9]{4}$"},
                "issued": {"type": "string", "format": "date"},
                "currency": {"enum": ["EUR", "USD", "GBP"]},
                "total": {"type": "number", "exclusiveMinimum": 0},
                "lines": {
                    "type": "array",
                    "minItems": 1,
                    "items": obj(
                        {
                            "description": {"type": "string", "minLength": 1},
                            "quantity": {"type": "integer", "minimum": 1},
                            "unit_price": {"type": "number", "minimum": 0},
                        },
                        ["description", "quantity", "unit_price"],
                    ),
                },
            },
            ["invoice_number", "total", "lines"],
        ),
        "Invoice INV-0042 issued 2026-11-02: 3 widgets at 10.50 EUR, total 31.50 EUR.",
        {
            "invoice_number": "INV-0042",
            "issued": "2026-11-02",
            "currency": "EUR",
            "total": 31.5,
            "lines": [{"description": "widget", "quantity": 3, "unit_price": 10.5}],
        },
        broken=(
            (
                {"invoice_number": "INV-0042", "total": 0, "lines": []},
                "$.total: breaks exclusiveMinimum",
            ),
            (
                {
                    "invoice_number": "INV-1",
                    "total": 1,
                    "lines": [{"description": "x", "quantity": 0, "unit_price": 1}],
                },
                "$.lines[0].quantity: breaks minimum",
            ),
        ),
    ),
    Served(
        "resume",
        obj(
            {
                "name": {"type": "string"},
                "email": {"type": "string", "format": "email"},
                "skills": {
                    "type": "array",
                    "items": {"type": "string"},
                    "uniqueItems": True,
                    "maxItems": 20,
                },
                "experience": {
                    "type": "array",
                    "items": obj(
                        {
                            "employer": {"type": "string"},
                            "start": {"type": "string", "format": "date"},
                            "years": {"type": "integer", "minimum": 0, "maximum": 80},
                        },
                        ["employer"],
                    ),
                },
            },
            ["name", "email"],
        ),
        "Ana Lima, ana@example.com. Skills: Python, Go. Worked 4 years at Acme from 2019-01-01.",
        {
            "name": "Ana Lima",
            "email": "ana@example.com",
            "skills": ["Python", "Go"],
            "experience": [{"employer": "Acme", "start": "2019-01-01", "years": 4}],
        },
        broken=(
            (
                {"name": "A", "email": "a@b.c", "skills": ["Go", "Go"]},
                "$.skills: breaks uniqueItems",
            ),
            (
                {"name": "A", "email": "a@b.c", "experience": [{"employer": "X", "years": 90}]},
                "$.experience[0].years: breaks maximum",
            ),
        ),
    ),
    Served(
        "postal address",
        ADDRESS,
        "Ship to 1 Main St, Springfield 12345, US.",
        ADDRESS_OK,
        broken=(({**ADDRESS_OK, "country": "USA"}, "$.country: breaks maxLength"),),
    ),
    Served(
        "catalog with a price map",
        obj(
            {
                "catalog": {"type": "string"},
                "prices": {
                    "type": "object",
                    "additionalProperties": {"type": "number", "minimum": 0},
                },
            },
            ["catalog", "prices"],
        ),
        "Spring catalog: apples 1.20, pears 0.90.",
        {"catalog": "Spring", "prices": {"apples": 1.2, "pears": 0.9}},
        wire={
            "catalog": "Spring",
            "prices": {
                "entries": [{"key": "apples", "value": 1.2}, {"key": "pears", "value": 0.9}]
            },
        },
        broken=(({"catalog": "S", "prices": {"apples": -1}}, "$.prices[*]: breaks minimum"),),
    ),
    Served(
        "payment as oneOf",
        obj(
            {
                "payment": {
                    "oneOf": [
                        obj(
                            {
                                "method": {"const": "card"},
                                "last4": {"type": "string", "pattern": "^[0-9]{4}$"},
                            },
                            ["method", "last4"],
                        ),
                        obj(
                            {"method": {"const": "bank"}, "iban": {"type": "string"}},
                            ["method", "iban"],
                        ),
                    ]
                }
            },
            ["payment"],
        ),
        "Paid by card ending 4242.",
        {"payment": {"method": "card", "last4": "4242"}},
        broken=(({"payment": {"method": "cash"}}, "$.payment: must match exactly one"),),
    ),
    Served(
        "event with formats",
        obj(
            {
                "title": {"type": "string"},
                "start": {"type": "string", "format": "date-time"},
                "length": {"type": "string", "format": "duration"},
                "url": {"type": "string", "format": "uri"},
                "organizer": {"type": "string", "format": "email"},
                "id": {"type": "string", "format": "uuid"},
                "venue_ip": {"type": "string", "format": "ipv4"},
            },
            ["title", "start"],
        ),
        "Launch party on 2026-12-01T18:00:00Z for PT2H at https://example.com by a@example.com.",
        {
            "title": "Launch party",
            "start": "2026-12-01T18:00:00Z",
            "length": "PT2H",
            "url": "https://example.com",
            "organizer": "a@example.com",
            "id": "123e4567-e89b-12d3-a456-426614174000",
            "venue_ip": "192.0.2.7",
        },
        broken=(({"title": "x", "start": "tomorrow"}, "$.start: breaks format"),),
    ),
    Served(
        "contact form with 30 optional fields",
        obj({f"field_{i:02d}": {"type": "string"} for i in range(30)}),
        "Only field_00 is given: hello.",
        {"field_00": "hello"},
        wire={"field_00": "hello", **{f"field_{i:02d}": None for i in range(24, 30)}},
        broken=(({"field_29": 3}, "$.field_29: must be of type string"),),
    ),
    Served(
        "survey with 26 optional answers, the last enum and union typed",
        obj(
            {
                **{f"q{i:02d}": {"type": "string"} for i in range(24)},
                "q24": {"enum": ["yes", "no"]},
                "q25": {"type": ["integer", "boolean"]},
            }
        ),
        "Q00: fine.",
        {"q00": "fine"},
        wire={"q00": "fine", "q24": None, "q25": None},
        broken=(({"q24": "maybe"}, "$.q24: must be one of the allowed values"),),
    ),
    Served(
        "product codes with patterns",
        obj(
            {
                "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"},
                "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
            },
            ["sku"],
        ),
        "Item ABC-123 in #ff0000.",
        {"sku": "ABC-123", "color": "#ff0000"},
        broken=(({"sku": "abc"}, "$.sku: must match the pattern"),),
    ),
    Served(
        "sensor reading with bounds",
        obj(
            {
                "temperature": {"type": "number", "minimum": -50, "maximum": 60},
                "humidity": {"type": "number", "minimum": 0, "maximum": 100, "multipleOf": 0.5},
            },
            ["temperature"],
        ),
        "It is 21.5 degrees with 40 percent humidity.",
        {"temperature": 21.5, "humidity": 40},
        broken=(
            ({"temperature": 70}, "$.temperature: breaks maximum"),
            ({"temperature": 1, "humidity": 40.3}, "$.humidity: breaks multipleOf"),
        ),
    ),
    Served(
        "draft-07 definitions",
        {
            "$schema": DRAFT7,
            "type": "object",
            "definitions": {"address": ADDRESS},
            "properties": {
                "billing": {"$ref": "#/definitions/address"},
                "shipping": {"$ref": "#/definitions/address"},
            },
            "required": ["billing"],
        },
        "Bill to 1 Main St, Springfield, US.",
        {"billing": ADDRESS_OK, "shipping": ADDRESS_OK},
        broken=(({"billing": {"city": "X", "country": "US"}}, "$.billing.street: is required"),),
    ),
    Served(
        "if/then conditional",
        obj(
            {"country": {"type": "string"}, "state": {"type": "string"}},
            ["country"],
            **{
                "if": obj({"country": {"const": "US"}}, ["country"]),
                "then": {"required": ["state"]},
            },
        ),
        "Customer in the US, state of Ohio.",
        {"country": "US", "state": "OH"},
        broken=(({"country": "US"}, "$.state: is required"),),
    ),
    Served(
        "dependentRequired",
        obj(
            {"credit_card": {"type": "string"}, "billing_address": {"type": "string"}},
            dependentRequired={"credit_card": ["billing_address"]},
        ),
        "Card 4242 with billing at 1 Main St.",
        {"credit_card": "4242", "billing_address": "1 Main St"},
        broken=(({"credit_card": "4242"}, "$: breaks the dependentRequired rule"),),
    ),
    Served(
        "prefixItems coordinates",
        obj(
            {
                "location": {
                    "type": "array",
                    "prefixItems": [
                        {"type": "number", "minimum": -90, "maximum": 90},
                        {"type": "number", "minimum": -180, "maximum": 180},
                    ],
                    "items": False,
                }
            },
            ["location"],
        ),
        "The site is at 48.85, 2.35.",
        {"location": [48.85, 2.35]},
        broken=(({"location": [100, 2.35]}, "$.location[0]: breaks maximum"),),
    ),
    Served(
        "not",
        obj({"username": {"type": "string", "not": {"const": "admin"}}}, ["username"]),
        "User jdoe signed up.",
        {"username": "jdoe"},
        broken=(({"username": "admin"}, "$.username: matches what the schema forbids"),),
    ),
    Served(
        "allOf with $ref",
        {
            "type": "object",
            "$defs": {"person": obj({"name": {"type": "string"}}, ["name"])},
            "properties": {
                "employee": {
                    "allOf": [
                        {"$ref": "#/$defs/person"},
                        obj({"name": {"type": "string"}, "badge": {"type": "integer"}}, ["badge"]),
                    ]
                }
            },
            "required": ["employee"],
        },
        "Employee Ana, badge 7.",
        {"employee": {"name": "Ana", "badge": 7}},
        broken=(({"employee": {"name": "Ana"}}, "$.employee.badge: is required"),),
    ),
    Served(
        "idn-email and uri-reference",
        obj(
            {
                "contact": {"type": "string", "format": "idn-email"},
                "link": {"type": "string", "format": "uri-reference"},
            },
            ["contact"],
        ),
        "Write to jose@example.es, see /docs/help.",
        {"contact": "jose@example.es", "link": "/docs/help"},
        broken=(({"contact": "no at sign"}, "$.contact: breaks format"),),
    ),
    Served(
        "patternProperties translations",
        obj(
            {
                "translations": {
                    "type": "object",
                    "patternProperties": {"^[a-z]{2}$": {"type": "string"}},
                    "additionalProperties": False,
                }
            },
            ["translations"],
        ),
        "Hello is hola in es and bonjour in fr.",
        {"translations": {"es": "hola", "fr": "bonjour"}},
        wire={
            "translations": {
                "entries": [{"key": "es", "value": "hola"}, {"key": "fr", "value": "bonjour"}]
            }
        },
        broken=(
            (
                {"translations": {"english": "hello"}},
                "$.translations: has a property the schema does not allow",
            ),
        ),
    ),
    Served(
        "nullable middle name",
        obj(
            {"first": {"type": "string"}, "middle": {"type": ["string", "null"]}},
            ["first", "middle"],
        ),
        "Ana Lima has no middle name.",
        {"first": "Ana", "middle": None},
        broken=(({"first": "Ana", "middle": 3}, "$.middle: has the wrong type"),),
    ),
    Served(
        "free-form metadata",
        obj({"title": {"type": "string"}, "metadata": {"type": "object"}}, ["title"]),
        "Report title: Q3; source: crm.",
        {"title": "Q3", "metadata": {"source": "crm", "pages": 3}},
        wire={
            "title": "Q3",
            "metadata": {
                "entries": [{"key": "source", "value": "crm"}, {"key": "pages", "value": 3}]
            },
        },
    ),
    Served(
        "draft-07 dependencies",
        {
            "$schema": DRAFT7,
            **obj(
                {"card": {"type": "string"}, "billing_address": {"type": "string"}},
                dependencies={"card": ["billing_address"]},
            ),
        },
        "Card 4242, billing at 1 Main St.",
        {"card": "4242", "billing_address": "1 Main St"},
        broken=(({"card": "4242"}, "$: breaks the dependencies rule"),),
    ),
    Served(
        "draft-07 tuple items",
        {
            "$schema": DRAFT7,
            **obj(
                {
                    "entry": {
                        "type": "array",
                        "items": [{"type": "string"}, {"type": "integer"}],
                        "additionalItems": False,
                    }
                },
                ["entry"],
            ),
        },
        "Room B has 12 seats.",
        {"entry": ["B", 12]},
        broken=(({"entry": [12, "B"]}, "$.entry[0]: must be of type string"),),
    ),
    Served(
        "scores map with maxProperties",
        obj(
            {
                "scores": {
                    "type": "object",
                    "additionalProperties": {"type": "integer"},
                    "maxProperties": 2,
                }
            },
            ["scores"],
        ),
        "Ana scored 3 and Bo scored 5.",
        {"scores": {"ana": 3, "bo": 5}},
        wire={"scores": {"entries": [{"key": "ana", "value": 3}, {"key": "bo", "value": 5}]}},
        broken=(({"scores": {"a": 1, "b": 2, "c": 3}}, "$.scores: breaks maxProperties"),),
    ),
    Served(
        "steps with minItems 3",
        obj({"steps": {"type": "array", "items": {"type": "string"}, "minItems": 3}}, ["steps"]),
        "Mix, bake, serve.",
        {"steps": ["mix", "bake", "serve"]},
        broken=(({"steps": ["mix", "bake"]}, "$.steps: breaks minItems"),),
    ),
    Served(
        "root $ref (generated model)",
        {
            "$ref": "#/$defs/Order",
            "$defs": {"Order": obj({"order_id": {"type": "string"}}, ["order_id"])},
        },
        "Order A-17 shipped.",
        {"order_id": "A-17"},
        broken=(({}, "$.order_id: is required"),),
    ),
    Served(
        "optional with anyOf null default",
        obj(
            {
                "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
                "age": {"type": "integer", "minimum": 0},
            },
            ["age"],
        ),
        "Bo is 31.",
        {"nickname": None, "age": 31},
        broken=(({"age": -1}, "$.age: breaks minimum"),),
    ),
    Served(
        "ticket with enums and const",
        obj(
            {
                "kind": {"const": "ticket"},
                "priority": {"type": "string", "enum": ["low", "high", 3]},
                "labels": {"type": "array", "items": {"enum": ["bug", "ui", "billing"]}},
            },
            ["kind", "priority"],
        ),
        "Urgent bug in the UI.",
        {"kind": "ticket", "priority": "high", "labels": ["bug", "ui"]},
        broken=(
            (
                {"kind": "ticket", "priority": "medium"},
                "$.priority: must be one of the allowed values",
            ),
        ),
    ),
    Served(
        "either email or phone (anyOf of required)",
        obj(
            {"email": {"type": "string"}, "phone": {"type": "string"}},
            anyOf=[{"required": ["email"]}, {"required": ["phone"]}],
        ),
        "Call 555-0100.",
        {"phone": "555-0100"},
        broken=(({}, "$: must match one of the alternatives"),),
    ),
]

REFUSED: list[Refused] = [
    Refused(
        "recursive tree",
        {
            "type": "object",
            "$defs": {
                "node": obj(
                    {
                        "name": {"type": "string"},
                        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    }
                )
            },
            "properties": {"tree": {"$ref": "#/$defs/node"}},
        },
        "json_schema/$defs/node/properties/children/items",
        "recursive",
    ),
    Refused(
        "self reference",
        obj({"tree": {"$ref": "#"}}),
        "json_schema/properties/tree",
        "recursive",
    ),
    Refused(
        "dangling reference",
        obj({"owner": {"$ref": "#/$defs/person"}}),
        "json_schema/properties/owner",
        "does not resolve",
    ),
    Refused(
        "remote reference",
        obj({"address": {"$ref": "https://schemas.example.com/address.json"}}),
        "json_schema/properties/address",
        "remote",
    ),
    Refused(
        "remote reference inside not",
        obj({"a": {"type": "string", "not": {"$ref": "http://127.0.0.1:9/x"}}}),
        "json_schema/properties/a/not",
        "remote",
    ),
    Refused(
        "lookahead password pattern",
        obj({"password": {"type": "string", "pattern": "^(?=.*[0-9]).{8,}$"}}),
        "json_schema/properties/password/pattern",
        "linear time",
    ),
    Refused(
        "object enum values",
        obj({"size": {"enum": [{"w": 1, "h": 2}, {"w": 2, "h": 4}]}}),
        "json_schema/properties/size/enum/0",
        "enum values",
    ),
    Refused(
        "undeclared required",
        obj({"name": {"type": "string"}}, ["name", "email"]),
        "json_schema/required/1",
        "does not declare",
    ),
    Refused(
        "false schema",
        obj({"legacy": False}),
        "json_schema/properties/legacy",
        "false schema",
    ),
    Refused(
        "top-level array", {"type": "array", "items": {"type": "string"}}, "json_schema", "object"
    ),
    Refused(
        "more than 16 unions",
        obj({f"u{i}": {"type": ["string", "integer"]} for i in range(17)}),
        "json_schema/properties/u16",
        "union",
    ),
    Refused(
        "draft-04",
        {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"},
        "json_schema/$schema",
        "draft",
    ),
    Refused(
        "anchor reference",
        {"type": "object", "properties": {"a": {"$ref": "#addr"}}},
        "json_schema/properties/a",
        "anchor",
    ),
    Refused(
        "unused recursive definition",
        {"type": "object", "$defs": {"loop": {"$ref": "#/$defs/loop"}}},
        "json_schema/$defs/loop",
        "recursive",
    ),
]


def served(name: str) -> Served:
    """The served case called ``name``."""
    return next(case for case in SERVED if case.name == name)

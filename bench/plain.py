"""Cost against the plain call: each task next to the prompt it replaces, on the same inputs.

Both sides are counted with the emulator's deterministic counter, exactly as the emulator bills
a request: system text, user text and the output schema (``build_prompt(...).total_tokens``).
Output tokens are counted over hand-written typical answers (never the emulator's heuristic
ones): the same text on both sides where the content is the same, tiergate's as the JSON its
schema asks for. Prices are the ledger's list prices from ``models.toml``; no caching on either
side (every prompt here is far below the cache minimum, or distinct per call).

    .venv/bin/python -m bench.plain                 # print the tables (a few seconds)
    .venv/bin/python -m bench.plain --update-readme # also refresh the recorded run's cost tables
                                                    # (bench/results/latest.*, bench/README.md)

bench/README.md's cost section also carries :mod:`bench.lifetime`'s low-traffic cache figures.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from anthropic.types import Message as ModelMessage
from anthropic.types import TextBlock
from google.protobuf.message import Message

from bench import lifetime
from bench.tickets import SHORT_TICKETS
from bench.workloads import prose
from tiergate import errors
from tiergate.calls.prompt import JsonObject, canonical_json, render_params
from tiergate.emulator.prompt import build_prompt
from tiergate.emulator.tokens import count_tokens
from tiergate.ledger import PriceTable, TokenUsage
from tiergate.tasks import TASKS
from tiergate.tiers import DEFAULT_MODELS
from tiergate.upstream.output import usable_output
from tiergate.v1 import task_service_pb2 as pb

ARTICLE = "seed article"
OBVIOUS = "obvious plain prompt (the article has none)"

# The article's Classify call: its one-line system prompt, the ticket, a bare label back.
CLASSIFY_SYSTEM = "Classify the support ticket into: Billing, Technical, Account, or General."
ARTICLE_LABELS = tuple(pb.Label(name=n) for n in ("Billing", "Technical", "Account", "General"))
# The article asks for a summary at a 10% ratio; a word limit is the obvious plain phrasing.
SUMMARIZE_SYSTEM = "Summarize the text in at most 120 words."
# The article: "Define your output schema in the prompt and Haiku 4 fills it accurately."
EXTRACT_SYSTEM = (
    "Extract the data from the text as JSON that follows this JSON Schema. Answer with the"
    " JSON only.\n{schema}"
)
# The article: "stuff entire documentation sections into a single prompt".
ANSWER_SYSTEM = "Answer the question using only these documents.\n\n{documents}"
MODERATE_SYSTEM = (
    "Check the text against these policy categories: {categories}. Answer with the names of"
    " the categories it violates, or none."
)
REASON_SYSTEM = "Think step by step, then give the final answer."


@dataclass(frozen=True)
class Case:
    """One task on one kind of input: the plain call and tiergate's, with typical answers."""

    task: str
    inputs: str
    source: str
    system: str
    requests: tuple[Message, ...]
    user: Callable[[Any], str]
    """The plain call's user text for a request (the same per-request text tiergate sends)."""
    plain_output: str
    typed_output: JsonObject
    typed_bare: str | None = None
    """What the model writes where tiergate asks for a bare answer (default: the value)."""


@dataclass(frozen=True)
class Side:
    input_tokens: int
    output_tokens: int
    nanos_per_1000: int


def _plain_side(case: Case, model: str, prices: PriceTable) -> Side:
    tokens_in = [
        build_prompt(
            {
                "system": case.system,
                "messages": [{"role": "user", "content": case.user(request)}],
            }
        ).total_tokens
        for request in case.requests
    ]
    return _side(tokens_in, count_tokens(case.plain_output), model, prices)


def _typed_side(case: Case, model: str, prices: PriceTable) -> Side:
    task = TASKS[case.task]
    facts = prices.facts(model)
    tokens_in = []
    for request in case.requests:
        task.validate(request)
        body = render_params(task.prompt(request), facts=facts, ttl="5m")
        tokens_in.append(build_prompt(body).total_tokens)
    # The typical answer holds only the fields the request's schema asks for.
    laid_out = task.prompt(case.requests[0])
    asked = laid_out.output_schema.get("properties", {})
    typed = {k: v for k, v in case.typed_output.items() if k in asked}
    # A bare answer (no schema sent) is the value alone, as the model writes it.
    if laid_out.bare_key:
        text = case.typed_bare or str(case.typed_output[laid_out.bare_key])
    else:
        text = canonical_json(typed)
    return _side(tokens_in, count_tokens(text), model, prices)


def _side(tokens_in: Sequence[int], tokens_out: int, model: str, prices: PriceTable) -> Side:
    mean_in = sum(tokens_in) / len(tokens_in)
    usage = TokenUsage(input_tokens=sum(tokens_in), output_tokens=tokens_out * len(tokens_in))
    nanos = prices.cost(model, usage).total_nanos * 1000 // len(tokens_in)
    return Side(round(mean_in), tokens_out, nanos)


def model_of(task: str) -> str:
    return DEFAULT_MODELS[TASKS[task].tier]


def compare(cases: Sequence[Case]) -> list[dict[str, Any]]:
    """Per case: both sides' tokens and cost per 1,000 calls, the ratios and the overhead."""
    prices = PriceTable.load()
    rows = []
    for case in cases:
        model = model_of(case.task)
        plain = _plain_side(case, model, prices)
        typed = _typed_side(case, model, prices)
        rows.append(
            {
                "task": case.task,
                "inputs": case.inputs,
                "calls": len(case.requests),
                "source": case.source,
                "model": model,
                "plain": vars(plain),
                "tiergate": vars(typed),
                # The per-request text is the same on both sides, so the difference is fixed.
                "overhead_in_tokens": typed.input_tokens - plain.input_tokens,
                "overhead_out_tokens": typed.output_tokens - plain.output_tokens,
                "input_ratio": round(typed.input_tokens / plain.input_tokens, 3),
                "cost_ratio": round(typed.nanos_per_1000 / plain.nanos_per_1000, 3),
                "target": TARGETS.get(case.task, 1.5),
                "target_on": "input" if case.task in INPUT_TARGETS else "cost",
            }
        )
    return rows


def workloads(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seed article's daily workloads, end to end, from the per-call figures."""
    by_inputs = {(r["task"], r["inputs"]): r for r in rows}
    out = []
    for name, key, per_day in (
        ("500 tickets/day", ("Classify", LONG_TICKETS), 500),
        ("1,000 pages/day", ("Summarize", PAGES), 1000),
    ):
        row = by_inputs[key]
        out.append(
            {
                "workload": name,
                "plain_nanos_per_day": row["plain"]["nanos_per_1000"] * per_day // 1000,
                "tiergate_nanos_per_day": row["tiergate"]["nanos_per_1000"] * per_day // 1000,
                "cost_ratio": row["cost_ratio"],
            }
        )
    return out


SHORT = "16 tickets, 30-75 words"
LONG_TICKETS = "800-token tickets (article)"
PAGES = "2,000-token pages (article)"

SUMMARY = (
    "Customers on annual plans asked for refunds after the pricing change, and the support team"
    " answered most within two business days. Login errors after the password reset release"
    " caused the largest share of technical tickets; a fix shipped on Thursday and the error"
    " rate fell back to normal. Webhook timeouts affected three integrations during the"
    " storage migration. The team proposes a clearer invoice layout, a status page entry for"
    " every outage longer than ten minutes, and a weekly review of escalated tickets with the"
    " product owners."
)
KEY_POINTS = [
    "Refund requests rose after the pricing change.",
    "A login fix shipped on Thursday.",
    "Webhook timeouts hit three integrations.",
]
ACTION_ITEMS = ["Add a status page entry for long outages.", "Review escalations weekly."]

INVOICE_SCHEMA = {
    "type": "object",
    "properties": {
        "customer": {"type": "string", "description": "the customer's full name"},
        "invoice_number": {"type": "string"},
        "date": {"type": "string", "description": "ISO 8601 date"},
        "amount": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]},
        "address": {"type": "string"},
    },
    "required": ["customer", "invoice_number", "date", "amount", "currency"],
    "additionalProperties": False,
}
INVOICE_EMAILS = (
    "Hello, please find attached invoice INV-20931 dated 14 October 2026 for 1,240.50 EUR,"
    " payable within 30 days. Billing contact: Marta Kowalski, Ul. Prosta 12, 00-850 Warsaw."
    " Kind regards, the accounts team.",
    "Invoice 7781-B for GBP 89.00 was issued on 2 November 2026 to Tom Ellis, 4 Mill Lane,"
    " Bristol BS1 4DJ. Thank you for your business.",
    "Reminder: invoice number A-5520 (USD 15,000, dated 2026-09-30) for Acme Robotics, attn."
    " Jorge Ramos, is now 25 days overdue. Please arrange payment to avoid a late fee.",
)
EXTRACTED = {
    "customer": "Marta Kowalski",
    "invoice_number": "INV-20931",
    "date": "2026-10-14",
    "amount": 1240.5,
    "currency": "EUR",
    "address": "Ul. Prosta 12, 00-850 Warsaw",
}

HANDBOOK = (
    pb.Document(
        id="refunds",
        title="Refund policy",
        text="Refunds are issued within 14 days of a request. Annual plans are refunded pro rata"
        " after the first month. Refunds go back to the original payment method.",
    ),
    pb.Document(
        id="security",
        title="Security",
        text="Passwords are hashed with Argon2. Sessions expire after 12 hours of inactivity."
        " Administrators can require two-factor authentication for every member.",
    ),
    pb.Document(
        id="seats",
        title="Seats and billing",
        text="Seats are billed monthly by the number of active members on the first day of the"
        " month. Removing a member frees the seat at the next billing date.",
    ),
)
QUESTIONS = (
    "How long does a refund take?",
    "When do sessions expire?",
    "Can we require two-factor authentication for everyone?",
    "When is a removed member's seat freed?",
)
ANSWER = "Refunds are issued within 14 days of the request."

POLICY = (
    pb.ModerationCategory(name="harassment", description="insults or threats aimed at a person"),
    pb.ModerationCategory(name="spam", description="unsolicited advertising or repeated links"),
    pb.ModerationCategory(name="personal_data", description="someone else's contact details"),
)
POSTS = (
    "Thanks for the quick fix yesterday, the export works again and our report went out on time.",
    "Does anyone know whether the annual plan includes the audit log, or is that enterprise only?",
    "The new dashboard is slower than the old one for me, especially the charts page on Firefox.",
)

PUZZLES = (
    "A ticket costs 0.5 cents on the fast tier. What do 500 tickets a day cost over 30 days?",
    "A queue holds 40 tickets and agents close 6 an hour while 2 new ones arrive each hour."
    " After how many hours is the queue empty?",
)
STEPS = [
    "One ticket costs 0.5 cents.",
    "500 tickets cost 250 cents, or $2.50, a day.",
    "Over 30 days that is $75.",
]


def _documents_text(documents: Sequence[pb.Document]) -> str:
    return "\n\n".join(f"{d.title}\n{d.text}" for d in documents)


def cases() -> list[Case]:
    rng = random.Random(5)
    plain_fixed = build_prompt(
        {"system": CLASSIFY_SYSTEM, "messages": [{"role": "user", "content": "x"}]}
    ).total_tokens - count_tokens("x")
    # The article's 800 tokens are the ticket plus the system prompt.
    long_tickets = tuple(prose(rng, 800 - plain_fixed) for _ in range(16))
    pages = tuple(prose(rng, 2000) for _ in range(8))
    classify_output = {"label": "Billing", "confidence": 0.93}
    return [
        Case(
            "Classify",
            SHORT,
            ARTICLE,
            CLASSIFY_SYSTEM,
            tuple(pb.ClassifyRequest(text=t, labels=ARTICLE_LABELS) for t in SHORT_TICKETS),
            lambda r: r.text,
            "Billing",
            classify_output,
        ),
        Case(
            "Classify",
            LONG_TICKETS,
            ARTICLE,
            CLASSIFY_SYSTEM,
            tuple(pb.ClassifyRequest(text=t, labels=ARTICLE_LABELS) for t in long_tickets),
            lambda r: r.text,
            "Billing",
            classify_output,
        ),
        Case(
            "Summarize",
            PAGES,
            OBVIOUS,
            SUMMARIZE_SYSTEM,
            tuple(pb.SummarizeRequest(text=p, max_words=120) for p in pages),
            lambda r: r.text,
            SUMMARY,
            {"summary": SUMMARY, "key_points": KEY_POINTS, "action_items": ACTION_ITEMS},
        ),
        Case(
            "Extract",
            "invoice e-mails, 6-field schema",
            ARTICLE,
            EXTRACT_SYSTEM.format(schema=canonical_json(INVOICE_SCHEMA)),
            tuple(
                pb.ExtractRequest(text=t, json_schema=canonical_json(INVOICE_SCHEMA))
                for t in INVOICE_EMAILS
            ),
            lambda r: r.text,
            canonical_json(EXTRACTED),
            EXTRACTED,
        ),
        Case(
            "Answer",
            "questions over 3 short documents",
            ARTICLE,
            ANSWER_SYSTEM.format(documents=_documents_text(HANDBOOK)),
            tuple(pb.AnswerRequest(question=q, documents=HANDBOOK) for q in QUESTIONS),
            lambda r: r.question,
            ANSWER,
            {"answer": ANSWER, "cite": [1]},
            typed_bare=ANSWER + " [1]",
        ),
        Case(
            "Moderate",
            "forum posts, 3 categories",
            OBVIOUS,
            MODERATE_SYSTEM.format(categories=", ".join(c.name for c in POLICY)),
            tuple(pb.ModerateRequest(text=p, categories=POLICY) for p in POSTS),
            lambda r: r.text,
            "none",
            {"flagged": []},
            typed_bare="none",
        ),
        Case(
            "Reason",
            "short word problems",
            OBVIOUS,
            REASON_SYSTEM,
            tuple(pb.ReasonRequest(question=q) for q in PUZZLES),
            lambda r: r.question,
            "\n".join(STEPS) + "\nAnswer: $75.",
            {"steps": STEPS, "answer": "$75", "confidence": 0.95},
            typed_bare="\n".join(STEPS) + "\nAnswer: $75.",
        ),
    ]


# How real models write a bare label when asked for "the label's name only" (the issue's
# measured forms and their neighbours), each with the label a person reads in it.
ANSWER_FORMS: tuple[tuple[str, str], ...] = (
    ("Billing", "Billing"),
    ("Billing\n", "Billing"),
    ("Billing.", "Billing"),
    ("billing", "Billing"),
    ("BILLING", "Billing"),
    ("**Billing**", "Billing"),
    ('"Billing"', "Billing"),
    ("`Billing`", "Billing"),
    ("'Technical'", "Technical"),
    ("Label: Billing", "Billing"),
    ("Category: **Account**", "Account"),
    ("The ticket is about Billing.", "Billing"),
    ("This is a Technical issue.", "Technical"),
    ("**General**.", "General"),
    ("Account\n\nThe customer cannot log in.", "Account"),
)
TARGETS = {"Classify": 1.25, "Extract": 1.25, "Summarize": 1.25}
"""Cost ratio targets; every other task's is 1.5 (it does more than its plain prompt)."""
INPUT_TARGETS = frozenset({"Extract"})
"""Tasks whose target is on the input ratio (the output is the same JSON on both sides)."""


def answer_forms() -> dict[str, Any]:
    """The share of :data:`ANSWER_FORMS` the single-label path takes in one call: read by the
    model client's own parsing, as the call would read them."""
    task = TASKS["Classify"]
    request = pb.ClassifyRequest(text="x", labels=ARTICLE_LABELS)
    prompt = task.prompt(request)
    taken = 0
    for text, label in ANSWER_FORMS:
        message = ModelMessage.model_construct(
            content=[TextBlock(type="text", text=text)], stop_reason="end_turn"
        )
        try:
            output = usable_output(message, prompt, lambda _: [], lambda: "text")
        except errors.OutputInvalid:
            continue
        taken += output["label"] == label
    return {"forms": len(ANSWER_FORMS), "one_call": taken, "share": taken / len(ANSWER_FORMS)}


def run() -> dict[str, Any]:
    rows = compare(cases())
    return {"per_call": rows, "workloads": workloads(rows), "answer_forms": answer_forms()}


CAPTION = (
    "Cost against the plain call. Both sides counted with the emulator's token counter over"
    " exactly what each sends (system, user text and output schema); outputs are hand-written"
    " typical answers; list prices from `models.toml`, no caching."
)


def _usd(nanos: int) -> str:
    return f"${nanos / 1e9:.4f}"


def _target(row: dict[str, Any]) -> str:
    on = row["target_on"]
    met = row[f"{on}_ratio"] <= row["target"]
    return f"{on} {'<=' if met else 'MISSED'} {row['target']:.2f}x"


def markdown(cost: dict[str, Any]) -> str:
    lines = [
        CAPTION,
        "",
        "| task | inputs | plain prompt | tokens in (plain / tiergate) | tokens out"
        " (plain / tiergate) | input ratio | per 1,000 calls (plain / tiergate) | cost ratio |"
        " target | fixed overhead in |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in cost["per_call"]:
        p, t = r["plain"], r["tiergate"]
        lines.append(
            f"| {r['task']} | {r['inputs']} | {r['source']} | {p['input_tokens']} /"
            f" {t['input_tokens']} | {p['output_tokens']} / {t['output_tokens']} |"
            f" {r['input_ratio']:.2f}x | {_usd(p['nanos_per_1000'])} /"
            f" {_usd(t['nanos_per_1000'])} |"
            f" {r['cost_ratio']:.2f}x | {_target(r)} | {r['overhead_in_tokens']:+d} |"
        )
    forms = cost["answer_forms"]
    lines += [
        "",
        f"Realistic answer forms of a bare label (`Billing.`, `billing`, `**Billing**`,"
        f" `Label: Billing`, `The ticket is about Billing.` ...): {forms['one_call']} of"
        f" {forms['forms']} taken in one call ({forms['share']:.0%}; target 100%).",
    ]
    lines += [
        "",
        "| seed workload | plain per day | tiergate per day | ratio |",
        "|---|---|---|---|",
    ]
    for w in cost["workloads"]:
        lines.append(
            f"| {w['workload']} | {_usd(w['plain_nanos_per_day'])} |"
            f" {_usd(w['tiergate_nanos_per_day'])} | {w['cost_ratio']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def section(cost: dict[str, Any], life: dict[str, Any] | None) -> str:
    """bench/README.md's cost section: the plain-call tables, then the cache-lifetime line."""
    return markdown(cost) + ("\n" + lifetime.markdown(life) if life else "")


README_START = "<!-- bench-cost:start -->"
README_END = "<!-- bench-cost:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plain", description=__doc__)
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="refresh the recorded run's cost tables and bench/README.md's",
    )
    args = parser.parse_args()
    cost = run()
    life = lifetime.run()
    text = section(cost, life)
    print(text)
    if args.update_readme:
        import json

        from bench.procs import ROOT
        from bench.report import publish, write

        # These figures are counted, not loaded: they replace the recorded run's cost tables
        # (bench/results/latest.json) and every page showing them is rewritten from it.
        results_dir = ROOT / "bench" / "results"
        latest = json.loads((results_dir / "latest.json").read_text(encoding="utf-8"))
        latest["plain"], latest["lifetime"] = cost, life
        write(latest, results_dir)
        for line in publish(latest, ROOT):
            print(line)


if __name__ == "__main__":
    main()

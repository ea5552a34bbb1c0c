"""Classification of items as agreement, update or message, and its precision on a labelled set."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from corrlog.model import Direction, Kind
from corrlog.rules.classify import (
    DEFAULT_AGREEMENT,
    DEFAULT_RULES,
    DEFAULT_UPDATE,
    ClassifyRules,
    classify,
)

LABELLED = Path(__file__).parent / "fixtures" / "classify" / "labelled.jsonl"
HELD_OUT_BATCH = 5


def kind_of(
    text: str,
    *,
    subject: str = "Project",
    direction: Direction = Direction.IN,
    declared: str | None = None,
    rules: ClassifyRules = DEFAULT_RULES,
) -> tuple[Kind, str]:
    """Classify with everyday defaults for the arguments a test does not care about."""
    return classify(
        subject=subject, new_text=text, direction=direction, declared=declared, rules=rules
    )


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("agreement", Kind.AGREEMENT),
        ("update", Kind.UPDATE),
        ("note", Kind.MESSAGE),
        ("Update", Kind.UPDATE),
    ],
)
def test_front_matter_type_wins(declared: str, expected: Kind) -> None:
    """A note's declared type beats a contrary subject tag and contrary patterns."""
    got = kind_of(
        "Agreed, signed and delivered.",
        subject="[agreement] terms",
        direction=Direction.INTERNAL,
        declared=declared,
    )
    assert (expected, "front matter type") == got


def test_blank_front_matter_type_is_ignored() -> None:
    """An empty `type:` falls through to the patterns."""
    assert Kind.AGREEMENT == kind_of("We approve the budget.", declared="  ")[0]


def test_unknown_front_matter_type_is_an_error() -> None:
    """A declared type that is not agreement/update/note is a ValueError naming it."""
    with pytest.raises(ValueError, match="'contract'"):
        kind_of("text", declared="contract")


@pytest.mark.parametrize(
    ("subject", "expected", "reason"),
    [
        ("[update] Week 47", Kind.UPDATE, "subject tag [update]"),
        ("Week 47 [UPDATE]", Kind.UPDATE, "subject tag [update]"),
        ("Terms [Agreement] v2", Kind.AGREEMENT, "subject tag [agreement]"),
        ("Fwd: [agreement] SOW", Kind.AGREEMENT, "subject tag [agreement]"),
    ],
)
def test_subject_tag_wins_over_patterns(subject: str, expected: Kind, reason: str) -> None:
    """A [update]/[agreement] tag anywhere in the subject, any case, decides the kind."""
    assert (expected, reason) == kind_of("Thanks, got it!", subject=subject)


def test_subject_tag_in_a_reply_is_not_the_senders() -> None:
    """A tag inherited by a Re: subject does not make a client's plain question an agreement."""
    got = kind_of("Could you send me the contract?", subject="Re: [agreement] Proposal")
    assert Kind.MESSAGE == got[0]


@pytest.mark.parametrize(
    "text",
    [
        "Could you send me the contract?",
        "What's your rate?",
        "Can we agree on the timeline first and talk about the rate later?",
        "Is the budget still 5k?",
        "Did you receive the signed contract?",
        "Do you have the signed statement of work",
        "Hi Sam, would you approve the scope by Friday",
        "The scope looks good, but is the rate final?",
    ],
)
def test_plain_question_is_a_message(text: str) -> None:
    """A question mentioning contract, rate or signing is a message, whatever the nouns."""
    assert Kind.MESSAGE == kind_of(text)[0]


def test_question_reason_names_it() -> None:
    """When only a question matched a pattern, the reason says so."""
    assert (Kind.MESSAGE, "plain question") == kind_of("Did you sign the approved SOW?")


def test_agreement_with_a_trailing_question_is_an_agreement() -> None:
    """An affirmative sentence still counts when a later sentence asks something."""
    got = kind_of("Agreed: 4,800 EUR for phase 1. Can you start Monday?")
    assert (Kind.AGREEMENT, "agreement pattern '(?<!as )agreed'") == got


@pytest.mark.parametrize(
    "text",
    [
        "We haven't signed yet, the budget needs sign-off from the board.",
        "Let me know if you want to go ahead.",
        "The contract is not approved.",
        "We'll approve milestone 1 once the typos are fixed.",
        "The change request is still to be approved.",
        "Just signed up for your newsletter!",
        "As agreed, here is the invoice.",
        "Our legal team is reviewing the contract.",
        "My proposal: scope, three milestones and a fixed price of 6,000 EUR.",
    ],
)
def test_negated_conditional_or_bare_nouns_are_no_agreement(text: str) -> None:
    """Negation, conditions, 'as agreed' and bare contract nouns do not make an agreement."""
    assert Kind.MESSAGE == kind_of(text)[0]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("Approved - please go ahead with the 12 descriptions.", "approved"),
        ("Change request accepted.", "accepted"),
        ("Signed contract attached.", "(?:counter-?)?signed(?! up)"),
        (
            "We accept the new rate of 95 EUR/hour.",
            "(?:we|i|he|she|they) (?:also |hereby )?accept(?:s|ed)?",
        ),
    ],
)
def test_agreement_reason_names_the_pattern(text: str, pattern: str) -> None:
    """The reason quotes the agreement pattern that fired."""
    assert (Kind.AGREEMENT, f"agreement pattern '{pattern}'") == kind_of(text)


def test_patterns_match_whole_words() -> None:
    """'signed' does not fire inside 'redesigned', nor 'demo' inside 'demolition'."""
    text = "The redesigned demolition page."
    assert (Kind.MESSAGE, "no pattern") == kind_of(text, direction=Direction.OUT)


def test_typographic_apostrophes_match() -> None:
    """Curly apostrophes from mail clients match patterns written with straight ones."""
    assert Kind.AGREEMENT == kind_of("We\u2019re in. 300 EUR a month.")[0]


@pytest.mark.parametrize("direction", [Direction.OUT, Direction.INTERNAL])
def test_freelancer_update_is_an_update(direction: Direction) -> None:
    """Outgoing mail and notes that report finished work are updates."""
    got = kind_of("I've delivered the final logo files.", direction=direction)
    assert (Kind.UPDATE, "update pattern 'delivered'") == got


def test_incoming_delivered_is_a_message() -> None:
    """A client's 'delivered' is about their side, so it stays a message and says why."""
    got = kind_of("The laptops were delivered to our office today.")
    assert (Kind.MESSAGE, "update pattern 'delivered' on incoming mail") == got


def test_agreement_beats_update() -> None:
    """An item that accepts a change and mentions delivery is an agreement."""
    got = kind_of(
        "Change request #3 accepted, delivered with milestone 3.", direction=Direction.OUT
    )
    assert Kind.AGREEMENT == got[0]


def test_reply_subject_is_not_read() -> None:
    """An inherited 'Re: Signed contract' subject does not turn a thank-you into an agreement."""
    assert (Kind.MESSAGE, "no pattern") == kind_of("Thanks!", subject="Re: Signed contract")


def test_own_subject_is_read() -> None:
    """A subject the sender wrote counts like a sentence of the text."""
    got = kind_of("See the platform.", subject="Milestone 2 submitted", direction=Direction.OUT)
    assert (Kind.UPDATE, "update pattern 'submit(?:ted|ting)'") == got


def test_from_config_none_keeps_defaults() -> None:
    """Missing lists keep the default patterns."""
    assert DEFAULT_RULES == ClassifyRules.from_config(None, None)


def test_from_config_list_replaces_defaults() -> None:
    """A configured list replaces that kind's defaults; an empty one switches it off."""
    rules = ClassifyRules.from_config(["handshake"], [])
    assert (DEFAULT_AGREEMENT, DEFAULT_UPDATE) != (rules.agreement, rules.update)
    assert (Kind.AGREEMENT, "agreement pattern 'handshake'") == kind_of("Handshake.", rules=rules)
    assert Kind.MESSAGE == kind_of("Delivered.", direction=Direction.OUT, rules=rules)[0]


@pytest.mark.parametrize("bad", ["(unclosed", "a)|(b", "*", ""])
def test_from_config_rejects_bad_regex_by_name(bad: str) -> None:
    """An invalid or empty pattern is a ValueError that quotes it."""
    with pytest.raises(ValueError, match="classification pattern") as caught:
        ClassifyRules.from_config(["agreed", bad], None)
    assert repr(bad) in str(caught.value)


@dataclass(frozen=True)
class Item:
    """One labelled fixture item."""

    subject: str
    new_text: str
    direction: Direction
    label: Kind
    question: bool
    batch: int


def load_labelled() -> list[Item]:
    """The labelled set from tests/fixtures/classify/labelled.jsonl."""
    items = []
    for line in LABELLED.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        items.append(
            Item(
                subject=data["subject"],
                new_text=data["new_text"],
                direction=Direction(data["direction"]),
                label=Kind(data["label"]),
                question=bool(data.get("question", False)),
                batch=int(data["batch"]),
            )
        )
    return items


def predict(item: Item) -> Kind:
    """The classifier's kind for a fixture item (mail and undeclared notes)."""
    return classify(
        subject=item.subject, new_text=item.new_text, direction=item.direction, declared=None
    )[0]


def scores(items: list[Item]) -> dict[Kind, tuple[int, int, int]]:
    """Per kind: (labelled, predicted, correct)."""
    labelled = Counter(i.label for i in items)
    predicted: Counter[Kind] = Counter()
    correct: Counter[Kind] = Counter()
    for item in items:
        got = predict(item)
        predicted[got] += 1
        correct[got] += got is item.label
    return {k: (labelled[k], predicted[k], correct[k]) for k in Kind}


def report(title: str, items: list[Item]) -> str:
    """A few lines of precision and recall, to quote."""
    lines = [f"{title}: {len(items)} items"]
    for kind, (labelled, predicted, correct) in scores(items).items():
        recall = correct / labelled if labelled else 1.0
        precision = correct / predicted if predicted else 1.0
        lines.append(
            f"  {kind.value:<9} recall {correct}/{labelled} = {recall:.1%}"
            f"  precision {correct}/{predicted} = {precision:.1%}"
        )
    return "\n".join(lines)


def test_labelled_set_is_big_and_varied() -> None:
    """At least 70 items, with every kind, every direction and plain questions present."""
    items = load_labelled()
    assert len(items) >= 70
    assert set(Kind) == {i.label for i in items}
    assert set(Direction) == {i.direction for i in items}
    assert all(i.label is Kind.MESSAGE for i in items if i.question)
    assert sum(i.question for i in items) >= 15


def test_labelled_precision_and_recall() -> None:
    """At least 90% of agreements and of updates are labelled right, and no question is an agreement."""
    items = load_labelled()
    print()
    print(report("all batches", items))
    print(report("batches 1-4 (rules tuned on them)", [i for i in items if i.batch < 5]))
    print(report("batch 5 (held out)", [i for i in items if i.batch == HELD_OUT_BATCH]))
    questions_as_agreements = [
        i.new_text for i in items if i.question and predict(i) is Kind.AGREEMENT
    ]
    print(f"plain questions labelled agreement: {len(questions_as_agreements)}")
    assert [] == questions_as_agreements
    for kind in (Kind.AGREEMENT, Kind.UPDATE):
        labelled, _predicted, correct = scores(items)[kind]
        assert correct / labelled >= 0.9, f"{kind.value}: {correct}/{labelled}"


# The combined-alternation prefilter must never change a verdict --------------------------

_WORDS = (
    "we", "agreed", "accept", "approved", "signed", "not", "if", "you", "the", "terms",
    "progress", "done", "this", "week", "delivered", "can", "is", "deal", "confirmed",
    "scope", "attached", "drafts", "spent", "3h", "on", "pending", "?", ".", "!", ",",
    "\n", "hi", "go", "ahead", "proceed", "fixed", "price", "ready", "for", "review",
    "AGREED", "Approved", "DONE", "Progress", "Déjà", "ÉTÉ", "We'RE", "In", "SIGNED",
)  # fmt: skip


def _exact(rules: ClassifyRules) -> ClassifyRules:
    """The same rules with the prefilter switched off (every sentence checked pattern by pattern)."""
    exact = ClassifyRules(agreement=rules.agreement, update=rules.update)
    object.__setattr__(exact, "_prefilters", (None, None, None))
    return exact


@given(
    subject=st.lists(st.sampled_from(_WORDS), max_size=6).map(" ".join),
    text=st.lists(st.sampled_from(_WORDS), max_size=40).map(" ".join),
    direction=st.sampled_from([Direction.IN, Direction.OUT, Direction.INTERNAL]),
)
@example(subject="", text="spent on", direction=Direction.OUT)
@example(subject="", text="3h on", direction=Direction.OUT)
@example(subject="we deal", text="if confirmed scope ? drafts attached", direction=Direction.OUT)
@settings(max_examples=400, deadline=None)
def test_prefilter_gives_the_same_kind_and_reason_as_the_exact_check(
    subject: str, text: str, direction: Direction
) -> None:
    """Classifying with the combined prefilter equals classifying every sentence pattern by pattern."""
    args = {"subject": subject, "new_text": text, "direction": direction, "declared": None}
    assert classify(**args, rules=DEFAULT_RULES) == classify(**args, rules=_exact(DEFAULT_RULES))


def test_prefilter_changes_no_verdict_on_the_labelled_set() -> None:
    """Every labelled item, each pattern's own words and the last pattern alone: the same verdicts."""
    exact = _exact(DEFAULT_RULES)
    items = [json.loads(line) for line in LABELLED.read_text().splitlines() if line.strip()]
    for item in items:
        for direction in (Direction.IN, Direction.OUT):
            args = {
                "subject": item["subject"],
                "new_text": item["new_text"],
                "direction": direction,
            }
            got = classify(**args, declared=None, rules=DEFAULT_RULES)
            assert got == classify(**args, declared=None, rules=exact)
    text = "Terms look good. 2.5 hours on it."
    for rules, expected in (
        (ClassifyRules(agreement=DEFAULT_AGREEMENT[-1:], update=()), Kind.AGREEMENT),
        (ClassifyRules(agreement=(), update=DEFAULT_UPDATE[-1:]), Kind.UPDATE),
    ):
        kind, _ = classify(
            subject="", new_text=text, direction=Direction.OUT, declared=None, rules=rules
        )
        assert kind is expected


def test_lowered_matching_only_where_case_folding_cannot_differ() -> None:
    """Default patterns match lowered ASCII text fast; upper-case or accented ones keep re.I."""
    assert all(f is not None and f.lowered is not None for f in DEFAULT_RULES._prefilters)
    cases = (
        (r"SOW signed", "the sow SIGNED today."),
        (r"approuvé", "APPROUVÉ."),
        (r"\x49 agree", "I agree."),
        (r"\N{LATIN CAPITAL LETTER I} agree", "I agree."),
    )
    for pattern, text in cases:
        rules = ClassifyRules.from_config([pattern], [])
        assert rules._prefilters[1] is not None and rules._prefilters[1].lowered is None
        kind, _ = classify(
            subject="", new_text=text, direction=Direction.OUT, declared=None, rules=rules
        )
        assert kind is Kind.AGREEMENT


def test_patterns_with_backreferences_are_not_combined() -> None:
    """A backreference would shift in one alternation: such rules skip the prefilter and still work."""
    rules = ClassifyRules.from_config([r"(\w+) and \1 agreed"], None)
    assert rules._prefilters[1] is None
    kind, _ = classify(
        subject="", new_text="Bob and Bob agreed.", direction=Direction.OUT, declared=None,
        rules=rules,
    )  # fmt: skip
    assert kind is Kind.AGREEMENT

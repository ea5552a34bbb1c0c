"""Quote stripping: attributions, Outlook blocks, forwards, signatures and inline replies."""

from __future__ import annotations

import time

import pytest

from corrlog.parse.quotes import split


def test_text_without_quotes_is_all_new() -> None:
    """A body with no quote markers is returned whole as new text."""
    assert ("Hello,\n\nall done.", "") == split("Hello,\n\nall done.\n")


def test_gmail_attribution_and_quote_are_removed() -> None:
    """ "On ... wrote:" and the '>' lines after it are quoted."""
    body = "Approved.\n\nOn Mon, 3 Jun 2024 at 10:00, Ann <ann@x.example> wrote:\n> old text\n"
    new, quoted = split(body)
    assert "Approved." == new
    assert "On Mon, 3 Jun 2024 at 10:00, Ann <ann@x.example> wrote:\n> old text" == quoted


def test_attribution_wrapped_over_two_lines() -> None:
    """An attribution broken inside the address is recognised as one."""
    body = (
        "Yes.\n\nOn Thu, Jun 13, 2024 at 9:02 AM Ann Freelance <\nann@x.example> wrote:\n\n> old\n"
    )
    assert "Yes." == split(body)[0]


@pytest.mark.parametrize(
    "attribution",
    [
        "Am 03.06.2024 um 10:00 schrieb Max Mustermann <max@example.de>:",
        "Le lun. 3 juin 2024 à 10:00, Jean Dupont <jean@example.fr> a écrit :",
        "El lun, 3 jun 2024 a las 10:00, Ana <ana@example.es> escribió:",
        "Il giorno lun 3 giu 2024 alle ore 10:00 Marco <marco@example.it> ha scritto:",
        "Op ma 3 jun. 2024 om 10:00 schreef Piet <piet@example.nl>:",
    ],
)
def test_localised_attributions(attribution: str) -> None:
    """German, French, Spanish, Italian and Dutch attributions end the new text."""
    assert "Danke." == split(f"Danke.\n\n{attribution}\n> alt\n")[0]


def test_attribution_without_quote_cuts_to_the_end() -> None:
    """Unprefixed old mail after "On ... wrote:" is quoted too."""
    body = "Sounds good.\n\nOn Mon, Jun 3, 2024, Ann wrote:\n\nThe old message, not prefixed.\n"
    assert (
        "Sounds good.",
        "On Mon, Jun 3, 2024, Ann wrote:\n\nThe old message, not prefixed.",
    ) == split(body)


def test_bottom_posted_reply_is_kept() -> None:
    """Text written below a quoted block is new text, the attribution is not."""
    body = "On Mon, Jun 3, 2024, Ann wrote:\n> Can you ship Friday?\n\nYes, Friday works.\n"
    assert (
        "Yes, Friday works.",
        "On Mon, Jun 3, 2024, Ann wrote:\n> Can you ship Friday?",
    ) == split(body)


def test_inline_replies_are_kept() -> None:
    """Answers between quoted lines stay, the quoted lines go."""
    body = "> Price ok?\nYes.\n> Deadline?\nJune 30.\n"
    assert ("Yes.\nJune 30.", "> Price ok?\n> Deadline?") == split(body)


def test_bare_wrote_line_with_quote_is_an_attribution() -> None:
    """ "Ann wrote:" followed by '>' lines is removed with them."""
    assert "Agreed." == split("Agreed.\n\nAnn Smith wrote:\n> the price is 500\n")[0]


def test_bare_wrote_line_without_quote_is_text() -> None:
    """A sentence ending in "wrote:" with no quote after it is ordinary text."""
    body = "Here is what the client wrote:\n\nThe logo must be blue."
    assert (body, "") == split(body)


def test_outlook_original_message_marker() -> None:
    """Everything from "-----Original Message-----" on is quoted."""
    body = "Fine by me.\n\n-----Original Message-----\nFrom: Ann\nSent: Monday\n\nold"
    assert "Fine by me." == split(body)[0]


def test_outlook_header_block_with_underscores() -> None:
    """Outlook's underscore line and From/Sent/To block start the quoted part."""
    body = (
        "Confirmed.\n\n________________________________\n"
        "From: Ann Freelance <ann@x.example>\nSent: Thursday, June 13, 2024 5:00 PM\n"
        "To: Frank <frank@y.example>\nSubject: Hosting\n\nold text"
    )
    new, quoted = split(body)
    assert "Confirmed." == new
    assert quoted.startswith("________________________________\nFrom: Ann")


def test_from_date_header_block() -> None:
    """A "From: ... / Date: ..." block (Gmail forward, Apple Mail) starts the quoted part."""
    body = (
        "See below.\n\nFrom: Gina <gina@h.example>\nDate: Tue, 18 Jun 2024\nSubject: Budget\n\nold"
    )
    assert "See below." == split(body)[0]


def test_german_outlook_block() -> None:
    """ "Von: / Gesendet:" is an Outlook block too."""
    assert "Passt." == split("Passt.\n\nVon: Max\nGesendet: Montag\nAn: Ann\n\nalt")[0]


def test_forward_markers() -> None:
    """Gmail and Lotus Notes forward separators start the quoted part."""
    assert "FYI" == split("FYI\n\n---------- Forwarded message ---------\nstuff")[0]
    assert (
        "FYI" == split("FYI\n---------------------- Forwarded by Sally/HOU/ECT on 05/10/2001\nx")[0]
    )


def test_signature_is_not_new_text() -> None:
    """The "-- " signature delimiter ends the new text."""
    assert ("Done.", "-- \nAnn Freelance\n+1 555 0100") == split(
        "Done.\n-- \nAnn Freelance\n+1 555 0100"
    )


def test_first_cut_wins() -> None:
    """A signature before the attribution cuts there; the attribution is in the quoted part."""
    body = "Ok.\n--\nAnn\n\nOn Mon, Jun 3, 2024, Bob wrote:\n> hi\n"
    assert "Ok." == split(body)[0]


def test_crlf_line_ends() -> None:
    """CRLF bodies are handled like LF bodies."""
    assert "Yes." == split("Yes.\r\n\r\nOn Mon, Ann wrote:\r\n> q\r\n")[0]


def test_large_input_is_fast() -> None:
    """Ten megabytes of attribution-like text split in well under two seconds."""
    body = "On Monday Ann wrote: " * 500_000 + "\n" + "> quoted line\n" * 100_000
    start = time.perf_counter()
    split(body)
    assert time.perf_counter() - start < 2.0

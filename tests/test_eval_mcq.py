"""Multiple-choice answer extraction (`vst.eval.metrics`): usual forms, ambiguity, option text,
VSI-Bench's first-token rule, and a property test that the extractor never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vst.eval import (
    extract_choice,
    mcq_score,
    parse_options,
    vsibench_first_token,
    vsibench_mcq_score,
)

DIRECTIONS = {"A": "front left", "B": "back left", "C": "front right", "D": "right"}


@pytest.mark.parametrize(
    "response",
    [
        "B",
        "b",
        " B \n",
        "(B)",
        "(b)",
        "[B]",
        "B.",
        "B)",
        "B:",
        "B) back left",
        "B. back left",
        "(B) back left",
        "B: back left",
        "B\nBecause the camera turned around.",
        "Answer: B",
        "answer: b",
        "Answer: (B)",
        "Final answer - B",
        "The answer is B",
        "The answer is B.",
        "The correct answer is (B).",
        "The answer is option B",
        "The best choice is B, since the sofa is closer.",
        "I think the answer is B because it is behind.",
        "Option B is correct.",
        "**B**",
        "**Answer:** **B**",
        "`B`",
        "\\boxed{B}",
        "So the result is $\\boxed{B}$.",
        "\\boxed{\\text{B}}",
        "\\boxed{(B)}",
        "\\boxed{B. back left}",
        '"B"',
        "Ｂ",  # full-width
        "<think>Maybe A or C... no.</think>B",
        "<think>A? C?</think>\nThe answer is B.",
        "<answer>B</answer>",
        "<think>It is A or B.</think><answer>(B)</answer>",
        "Looking at the two views, the camera moved back.\nB",
        "Comparing A and C, the answer is B.",
        "The chair is behind me (B).",
    ],
)
def test_usual_forms_give_the_letter(response):
    assert extract_choice(response) == "B"
    assert extract_choice(response, DIRECTIONS) == "B"


@pytest.mark.parametrize(
    "response",
    [
        "",
        "   ",
        "A or B",
        "A, B",
        "A/B",
        "(A) or (B)",
        "The answer is A or B.",
        "The answer is A, C.",
        "Answer: A and B",
        "The answer is A. The answer is C.",
        "\\boxed{A} or \\boxed{C}",
        "Between A and C I cannot decide.",
        "A. front left\nB. back left\nC. front right",  # echoes the options
        "<think>The answer is B",  # never finished thinking
        "I don't know.",
        "A chair.",  # the article, not option A
        "box-A is nearer than box-C",  # hyphenated names are not option letters
    ],
)
def test_ambiguous_or_absent_gives_none(response):
    assert extract_choice(response) is None


def test_article_and_pronoun_are_not_letters():
    assert extract_choice("I think it is C") == "C"
    assert extract_choice("A lamp is nearer, so C") == "C"
    assert extract_choice("A is correct") == "A"  # "is" may follow an option letter
    assert extract_choice("A lamp") is None  # "A" + lower-case noun: the article
    assert extract_choice("The answer is A because it is nearer") == "A"


def test_letters_restricted_to_the_options():
    opts = {"A": "yes", "B": "no"}
    assert extract_choice("The answer is E", opts) is None
    assert extract_choice("X marks it; the answer is B", opts) == "B"
    assert extract_choice("Q: B", letters="AB") == "B"
    assert extract_choice("C", letters="AB") is None
    assert extract_choice("D", ["one", "two", "three", "four"]) == "D"


def test_option_text_match():
    assert extract_choice("right", DIRECTIONS) == "D"
    assert extract_choice("Right.", DIRECTIONS) == "D"
    assert extract_choice("front right", DIRECTIONS) == "C"  # not also "right"
    assert extract_choice("It is at the front right of the camera.", DIRECTIONS) == "C"
    assert extract_choice("It is right, not front right", DIRECTIONS) is None
    assert extract_choice("front left or back left", DIRECTIONS) is None
    assert extract_choice("upstairs", DIRECTIONS) is None
    assert extract_choice("There are 6 plants.", ["5", "6", "1", "3"]) == "B"
    assert extract_choice("Not 60, just 6.", ["5", "6", "60"]) is None
    assert extract_choice("\\boxed{6}", ["5", "6", "1", "3"]) == "B"
    order = {"A": "box-A, box-C, box-B", "B": "box-C, box-A, box-B"}
    assert extract_choice("box-C, box-A, box-B", order) == "B"
    assert extract_choice("the object at (188, 272)", ["(341, 376)", "(188, 272)"]) == "B"
    assert extract_choice("right", None) is None  # no options: text cannot decide


def test_letter_takes_precedence_over_text():
    assert extract_choice("A. right", DIRECTIONS) == "A"


def test_answer_phrase_outranks_walking_through_the_options():
    text = "A. front left: no, it faces away.\nB. back left: yes.\nSo the answer is B."
    assert extract_choice(text, DIRECTIONS) == "B"
    assert extract_choice("Option A is wrong. Option C is right.") is None


def test_parse_options_from_a_generated_question():
    question = (
        "Standing where image 2 was taken and looking the same way, where would the first camera"
        " be?\nA. front left\nB. back left\nC. front right\nD. right\nReply with the letter of"
        " the correct option."
    )
    assert parse_options(question) == DIRECTIONS
    assert parse_options("Options:\n(A) 5\n(B) 6") == {"A": "5", "B": "6"}
    assert parse_options("no options here") == {}
    assert extract_choice("front right", parse_options(question)) == "C"


def test_mcq_score():
    assert mcq_score("The answer is (C).", "C") == 1.0
    assert mcq_score("The answer is (C).", "c") == 1.0
    assert mcq_score("C or D", "C") == 0.0
    assert mcq_score("front right", "C", DIRECTIONS) == 1.0
    assert mcq_score("B", "C") == 0.0


@pytest.mark.parametrize(
    ("pred", "token", "score"),
    [
        ("B", "B", 1.0),
        ("b", "b", 1.0),
        ("B.", "B", 1.0),
        ("B. back left", "B", 1.0),
        ("B) back left", "B)", 0.0),  # only "." is stripped
        ("(B)", "(B)", 0.0),
        ("B..", "B", 1.0),
        (" B", "", 0.0),  # split(" ") keeps a leading empty token
        ("B\nbecause", "B\nbecause", 0.0),  # a newline does not split
        ("B\n", "B", 1.0),
        ("The answer is B", "The", 0.0),
        ("", "", 0.0),
    ],
)
def test_vsibench_first_token_rule(pred, token, score):
    assert vsibench_first_token(pred) == token
    assert vsibench_mcq_score(pred, "B") == score


_PIECES = st.sampled_from(
    [
        "A", "B", "c", "(B)", "[D]", "B.", "B)", "answer", "Answer:", "is", "or", ",", "/", "\n",
        " ", "**", "\\boxed{", "}", "{", "\\text{", "<think>", "</think>", "<answer>", "</answer>",
        "option", "box-A", "I", "a", "the", "$", "front right", "right", "6", "Ｂ", "\x00", "é",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    text=st.one_of(st.text(max_size=200), st.lists(_PIECES, max_size=25).map("".join)),
    with_options=st.booleans(),
)
def test_extractor_never_raises(text, with_options):
    opts = DIRECTIONS if with_options else None
    got = extract_choice(text, opts)
    assert got is None or got in ("ABCD" if with_options else "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert extract_choice(text, opts) == got  # deterministic
    assert isinstance(vsibench_first_token(text), str)
    assert vsibench_mcq_score(text, "A") in (0.0, 1.0)


@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text(max_size=3))))
def test_non_strings_give_none(value):
    assert extract_choice(value) is None  # type: ignore[arg-type]

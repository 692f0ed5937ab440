"""The duplicate detector (重复提案识别) and its labelled set. Pure, no I/O."""

from __future__ import annotations

import itertools

import pytest

from piaojue import intake_bench
from services.intake.domain.duplicates import DEFAULT_THRESHOLD, Corpus, Gazetteer, Place, place_similarity, read

GAZETTEER = Gazetteer([
    Place("王庄村", aliases=("王庄",)), Place("马庙村", aliases=("马庙",)), Place("新仓村", aliases=("新仓",)),
    Place("城西社区", "community", ("城西",)), Place("城西小学", "school", ("西小",), within="城西社区"),
    Place("花亭村", aliases=("花亭",)), Place("花亭湖", "lake"),
    Place("王马公路", "road", ("王马路", "王马线"), ends=("王庄村", "马庙村")),
])


def scored(*proposals: tuple[str, str, str]):
    readings = [read(str(i), title, content, location, GAZETTEER) for i, (title, content, location) in enumerate(proposals)]
    corpus = Corpus(readings)
    return [corpus.score(a, b).total for a, b in itertools.combinations(readings, 2)]


def test_two_wordings_with_no_word_in_common_are_found_through_the_road_alias_and_its_two_ends():
    [score] = scored(("王马路太烂了", "", "马庙村"), ("王庄到马庙的公路需要升级改造", "", "王庄村"))
    assert score >= DEFAULT_THRESHOLD


def test_the_same_need_in_two_villages_is_not_a_duplicate_however_alike_the_words():
    [score] = scored(("新仓村安装路灯", "", "新仓村"), ("王庄村安装路灯", "", "王庄村"))
    assert score < DEFAULT_THRESHOLD


def test_two_needs_in_one_place_are_not_duplicates():
    [score] = scored(("王马路太烂了", "", ""), ("王马路沿线安装路灯", "", ""))
    assert score < DEFAULT_THRESHOLD


def test_a_place_inside_another_counts_as_near():
    a, b = (read(str(i), t, "", loc, GAZETTEER) for i, (t, loc) in enumerate([("西小门口加装红绿灯", ""), ("学校门口红绿灯", "城西社区")]))
    assert place_similarity(a, b) == 0.7


def test_the_longest_place_name_wins():
    assert read("1", "花亭湖景区厕所", gazetteer=GAZETTEER).leaves == {"花亭湖"}
    assert read("1", "花亭村厕所", gazetteer=GAZETTEER).leaves == {"花亭村"}


def test_the_title_says_what_is_asked_and_the_content_only_when_the_title_does_not():
    bus = read("1", "去镇上没有车坐", "老人看病只能打摩的", "", GAZETTEER)
    assert bus.topics == {"公交"}
    assert read("2", "我们村的事", "自来水水压不足", "", GAZETTEER).topics == {"饮水"}


def test_a_proposal_is_never_its_own_duplicate_and_suggestions_come_best_first():
    readings = [read(str(i), t, "", loc, GAZETTEER) for i, (t, loc) in enumerate(
        [("王马路太烂了", "马庙村"), ("王马线路面修缮", ""), ("王庄到马庙的公路坑洼", "王庄村"), ("新仓村路灯", "新仓村")])]
    corpus = Corpus(readings)
    found = corpus.similar_to(readings[0])
    assert [r.id for r, _ in found] and "0" not in [r.id for r, _ in found] and "3" not in [r.id for r, _ in found]
    assert [s.total for _, s in found] == sorted((s.total for _, s in found), reverse=True)


# ---------------------------------------------------------------- the labelled set


@pytest.fixture(scope="module")
def labelled():
    return intake_bench.load()


def test_the_labelled_set_is_what_the_issue_asks_for(labelled):
    rows, _ = labelled
    assert len(rows) >= 200
    by_group = {}
    for r in rows:
        by_group.setdefault(r["group"], []).append(r)
    pairs = [(a, b) for members in by_group.values() for a, b in itertools.combinations(members, 2)]
    assert len(pairs) >= 40
    assert sum(intake_bench.few_words_shared(a, b) for a, b in pairs) >= 15
    assert all(len({m["half"] for m in members}) == 1 for members in by_group.values()), "a group never straddles the halves"


def test_the_detector_beats_text_alone_on_the_held_out_half(labelled):
    """A guard, not a tuning target: the figures the README reports (piaojue bench duplicates)."""
    rows, gazetteer = labelled
    held_out = [r for r in rows if r["half"] == "held_out"]
    detector = intake_bench.measure(intake_bench.detector(gazetteer)(held_out), held_out, DEFAULT_THRESHOLD)
    text_only = intake_bench.measure(intake_bench.jieba_tfidf(held_out), held_out, DEFAULT_THRESHOLD)
    assert detector.precision >= 0.7 and detector.recall >= 0.45
    assert detector.recall > text_only.recall and detector.precision > text_only.precision

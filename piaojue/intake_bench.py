"""Intake measurements: the duplicate detector against the labelled set, and the spreadsheet
import's speed. ``piaojue bench duplicates`` and ``piaojue bench intake``.

The detector is measured with text-only baselines beside it, in the same run: jieba TF-IDF
cosine, character-bigram cosine and, with ``--pg``, PostgreSQL ``pg_trgm`` similarity. Each
baseline's threshold is the one with the best F1 on the ``tune`` half; the detector runs at its
default threshold. Pairs are formed within a half, never across."""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.intake.domain import duplicates
from services.intake.domain.duplicates import Corpus, Gazetteer, Place

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "intake_duplicates"
HALVES = ("tune", "held_out")


def load(data: Path = DATA) -> tuple[list[dict[str, str]], Gazetteer]:
    with open(data / "proposals.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(data / "places.csv", encoding="utf-8") as f:
        places = [Place(r["name"], r["kind"], _split(r["aliases"]), r["within"] or None, _split(r["ends"]))
                  for r in csv.DictReader(f)]
    return rows, Gazetteer(places)


def _split(cell: str) -> tuple[str, ...]:
    return tuple(x for x in cell.split("|") if x)


Scorer = Callable[[list[dict[str, str]]], dict[tuple[str, str], float]]


def detector(gazetteer: Gazetteer) -> Scorer:
    def score(rows):
        readings = [duplicates.read(r["id"], r["title"], r["content"], r["location"], gazetteer) for r in rows]
        corpus = Corpus(readings)
        return {(a.id, b.id): corpus.score(a, b).total for a, b in itertools.combinations(readings, 2)}
    return score


def jieba_tfidf(rows):
    """Text only: the same tokenizer and TF-IDF cosine, no places or topics."""
    readings = [duplicates.read(r["id"], r["title"], r["content"]) for r in rows]
    corpus = Corpus(readings)
    return {(a.id, b.id): corpus.text_similarity(a, b) for a, b in itertools.combinations(readings, 2)}


def bigrams(text: str) -> Counter:
    chars = "".join(re.findall(r"[\u4e00-\u9fffA-Za-z0-9]", text))
    return Counter(chars[i:i + 2] for i in range(len(chars) - 1))


def char_bigrams(rows):
    """Text only: character-bigram TF-IDF cosine, no tokenizer."""
    grams = {r["id"]: bigrams(r["title"] + r["title"] + r["content"]) for r in rows}
    df = Counter(g for v in grams.values() for g in v)
    n = len(rows)
    vectors = {}
    for i, v in grams.items():
        w = {g: c * (math.log((1 + n) / (1 + df[g])) + 1) for g, c in v.items()}
        norm = math.sqrt(sum(x * x for x in w.values())) or 1.0
        vectors[i] = {g: x / norm for g, x in w.items()}
    return {(a["id"], b["id"]): sum(x * vectors[b["id"]].get(g, 0.0) for g, x in vectors[a["id"]].items())
            for a, b in itertools.combinations(rows, 2)}


def pg_trgm(database_url: str) -> Scorer:
    """Text only: PostgreSQL pg_trgm ``similarity`` of title and content. Under the C locale it
    ignores CJK characters; the database's LC_CTYPE is printed with the figures."""
    def score(rows):
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            texts = [r["title"] + " " + r["content"] for r in rows]
            ids = [r["id"] for r in rows]
            result = conn.execute(
                "SELECT a.i, b.i, similarity(a.t, b.t) FROM unnest(%s::text[], %s::text[]) a(i, t)"
                " JOIN unnest(%s::text[], %s::text[]) b(i, t) ON a.i < b.i", (ids, texts, ids, texts)).fetchall()
        order = {i: n for n, i in enumerate(ids)}
        return {(a, b) if order[a] < order[b] else (b, a): s for a, b, s in result}
    return score


@dataclass
class Figures:
    threshold: float
    precision: float
    recall: float
    hard_recall: float  # on duplicate pairs that share almost no words
    found: int
    pairs: int


def measure(scores: dict[tuple[str, str], float], rows: list[dict[str, str]], threshold: float) -> Figures:
    by_id = {r["id"]: r for r in rows}
    truth = {pair for pair in scores if by_id[pair[0]]["group"] == by_id[pair[1]]["group"]}
    hard = {pair for pair in truth if few_words_shared(by_id[pair[0]], by_id[pair[1]])}
    flagged = {pair for pair, s in scores.items() if s >= threshold}
    tp = len(flagged & truth)
    return Figures(threshold, tp / len(flagged) if flagged else 1.0, tp / len(truth) if truth else 1.0,
                   len(flagged & hard) / len(hard) if hard else 1.0, len(flagged), len(truth))


def few_words_shared(a: dict[str, str], b: dict[str, str]) -> bool:
    """Almost no words in common: at most one word of the two texts' words shared (jieba)."""
    wa, wb = (set(duplicates.read("", r["title"], r["content"]).words) for r in (a, b))
    return len(wa & wb) <= 1


def best_threshold(scores: dict[tuple[str, str], float], rows: list[dict[str, str]]) -> float:
    def f1(t: float) -> float:
        m = measure(scores, rows, t)
        return 2 * m.precision * m.recall / (m.precision + m.recall) if m.precision + m.recall else 0.0
    return max((t / 100 for t in range(5, 100)), key=f1)


def evaluate(data: Path = DATA, database_url: str | None = None) -> dict:
    rows, gazetteer = load(data)
    halves = {h: [r for r in rows if r["half"] == h] for h in HALVES}
    methods: dict[str, tuple[Scorer, float | None]] = {
        "detector (jieba + places + topics)": (detector(gazetteer), duplicates.DEFAULT_THRESHOLD),
        "jieba TF-IDF cosine, text only": (jieba_tfidf, None),
        "character bigram cosine, text only": (char_bigrams, None),
    }
    if database_url:
        methods["pg_trgm similarity, text only"] = (pg_trgm(database_url), None)
    out = {"halves": {h: {"proposals": len(r), "duplicate_pairs": sum(1 for a, b in itertools.combinations(r, 2)
                                                                        if a["group"] == b["group"])}
                      for h, r in halves.items()}, "methods": {}}
    for name, (scorer, threshold) in methods.items():
        scores = {h: scorer(r) for h, r in halves.items()}
        if threshold is None:
            threshold = best_threshold(scores["tune"], halves["tune"])
        out["methods"][name] = {h: measure(scores[h], halves[h], threshold).__dict__ for h in HALVES}
    if database_url:
        import psycopg

        with psycopg.connect(database_url) as conn:
            out["database_ctype"] = conn.execute("SELECT datctype FROM pg_database WHERE datname = current_database()"
                                                 ).fetchone()[0]
    return out


def run_duplicates(args: argparse.Namespace) -> int:
    database_url = None
    if args.pg:
        from shared.settings import get_settings

        database_url = get_settings().database_url
    result = evaluate(Path(args.data), database_url)
    print(f"{'method':40s} {'threshold':>9s}  {'tune P / R':>13s}  {'held-out P / R':>15s}  {'held-out hard R':>15s}")
    for name, figures in result["methods"].items():
        t, h = figures["tune"], figures["held_out"]
        print(f"{name:40s} {t['threshold']:9.2f}  {t['precision']:6.3f}/{t['recall']:6.3f}  "
              f"{h['precision']:7.3f}/{h['recall']:6.3f}  {h['hard_recall']:15.3f}")
    print(json.dumps(result, ensure_ascii=False))
    return 0


def add_duplicates_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=str(DATA), help="the labelled set (default tests/data/intake_duplicates)")
    p.add_argument("--pg", action="store_true", help="also measure pg_trgm on the database of PIAOJUE_DATABASE_URL")

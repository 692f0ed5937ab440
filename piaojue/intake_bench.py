"""Intake measurements: the duplicate detector against the labelled set, and the spreadsheet
import's speed. ``piaojue bench duplicates`` and ``piaojue bench intake``.

The detector is measured with text-only baselines beside it, in the same run: jieba TF-IDF
cosine, character-bigram cosine and, with ``--pg``, PostgreSQL ``pg_trgm`` similarity. Each
baseline's threshold is the one with the best F1 on the ``tune`` half; the detector runs at its
default threshold. Pairs are formed within a half, never across."""

from __future__ import annotations

import argparse
import csv
import io
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


# ---------------------------------------------------------------- the spreadsheet import's speed

VILLAGES = ("王庄村", "马庙村", "联丰村", "新仓村", "天华村", "中山村", "红星村", "花亭村", "茶棚村", "余河村")
NEEDS = ("村道硬化", "安装路灯", "自来水管网改造", "垃圾清运点", "卫生室改造", "文化广场健身器材", "危桥加固", "水渠修复")


def grid_rows(n: int, salt: str = "") -> list[list]:
    """``n`` rows of a grid worker's list, as the template has them."""
    return [[f"{VILLAGES[i % len(VILLAGES)]}{NEEDS[i % len(NEEDS)]}（第{i // 80 + 1}组{salt}）", "群众反映强烈，希望尽快解决",
             VILLAGES[i % len(VILLAGES)], "民生", "网格", 100 + i % 900, 50_000 + 1_000 * (i % 300), "否", "", "",
             f"网格员{i % 40:02d}", f"139{i:08d}", "2024-11-20"] for i in range(n)]


def grid_file(rows: list[list], kind: str) -> bytes:
    import openpyxl

    from services.intake.spreadsheets import COLUMNS

    headers = [c.header for c in COLUMNS]
    if kind == "csv":
        out = io.StringIO()
        csv.writer(out).writerows([headers, *rows])
        return out.getvalue().encode("gb18030")  # as Excel on a Chinese Windows saves it
    book = openpyxl.Workbook()
    for row in [headers, *rows]:
        book.active.append(row)
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


def run_import(args: argparse.Namespace) -> int:
    """Import N rows through the intake API (in-process, on a database of its own), beside the
    time to read the same file alone and a tenth of the rows, in the same run."""
    import asyncio
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from services.intake.app import SERVICE
    from shared.db import migrate
    from shared.settings import get_settings

    base = get_settings()
    parts = urlsplit(base.database_url)
    name = parts.path.lstrip("/") + "_bench_intake"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    settings = base.model_copy(update={"database_url": urlunsplit(parts._replace(path=f"/{name}"))})
    try:
        migrate(settings, SERVICE.name, SERVICE.migrations)
        report = asyncio.run(_measure_import(settings, args.rows))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"{'what':44s} {'rows':>6s} {'seconds':>8s} {'rows/s':>8s}")
    for what, figures in report["steps"].items():
        print(f"{what:44s} {figures['rows']:6d} {figures['seconds']:8.2f} {figures['rows_per_s']:8.0f}")
    print(json.dumps(report, ensure_ascii=False))
    return 0


async def _measure_import(settings, rows: int) -> dict:
    import time

    import httpx

    from services.intake.app import SERVICE
    from services.intake.spreadsheets import XLSX, parse
    from shared.auth import Role, mint
    from shared.service import create_app

    app = create_app(SERVICE, settings)
    token = mint("bench-office", Role.OFFICE, "taihu.bench", secret=settings.auth_secret)
    files = {"xlsx": grid_file(grid_rows(rows), "xlsx"), "csv": grid_file(grid_rows(rows, "c"), "csv"),
             "tenth": grid_file(grid_rows(rows // 10, "t"), "xlsx")}
    steps: dict[str, dict] = {}

    def step(what: str, n: int, seconds: float) -> None:
        steps[what] = {"rows": n, "seconds": round(seconds, 3), "rows_per_s": round(n / seconds) if seconds else 0}

    started = time.perf_counter()
    assert not parse(files["xlsx"]).problems
    step("read the .xlsx alone (baseline, no database)", rows, time.perf_counter() - started)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://intake", timeout=600) as client:
        async def upload(data: bytes, dry_run: bool = False) -> dict:
            response = await client.post("/imports", params={"year": 2025, "dry_run": str(dry_run).lower()}, content=data,
                                         headers={"authorization": f"Bearer {token}", "content-type": XLSX})
            assert response.status_code in (200, 201), response.text
            return response.json()

        for what, data, n, dry_run in (
            ("dry run of the .xlsx (HTTP)", files["xlsx"], rows, True),
            ("import of the .xlsx (HTTP, one transaction)", files["xlsx"], rows, False),
            ("the same .xlsx again (nothing created)", files["xlsx"], rows, False),
            ("import of a GBK .csv (HTTP)", files["csv"], rows, False),
            ("import of a tenth of the rows (baseline)", files["tenth"], rows // 10, False),
        ):
            started = time.perf_counter()
            answer = await upload(data, dry_run)
            step(what, n, time.perf_counter() - started)
            steps[what]["created"] = answer["created"]
    return {"rows": rows, "steps": steps}


def add_import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, default=5_000, help="rows in the spreadsheet (default 5,000)")

"""Likely duplicates among a year's proposals (重复提案识别): many people ask for the same thing in
different words ("王马路太烂了" and "王庄到马庙的公路需要升级改造"). Pure: no I/O.

A proposal is read three ways, and a pair is scored on all three:

- **where** — the places it names, in its text and its location field, through the township's
  gazetteer (villages, roads, schools, with local short names: 王马路 = 王马公路; a road between
  two villages is also found when both ends are named). Two proposals about different places
  are different items, however alike their words.
- **what about** — topics from a lexicon of livelihood needs (道路, 饮水, 照明, …).
- **the words** — TF-IDF cosine over the words the Chinese tokenizer jieba (``rjieba``, the
  maintained jieba-rs) finds once the place names are taken out, weighted by how rare each word
  is among the year's proposals.

Weights and the default threshold were fitted on the ``tune`` half of the labelled set in
``tests/data/intake_duplicates`` only; the README reports the held-out half."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import rjieba

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Place:
    """A place of the township's gazetteer (地名): a village, a road, a school …"""

    name: str
    kind: str = "village"
    aliases: tuple[str, ...] = ()
    within: str | None = None  # the place it lies in (城西小学 in 城西社区)
    ends: tuple[str, ...] = ()  # a road between two villages: both


class Gazetteer:
    """Finds places in free text, the longest name first (花亭湖 before 花亭)."""

    def __init__(self, places: Iterable[Place]) -> None:
        self.places = {p.name: p for p in places}
        names = {alias: p.name for p in self.places.values() for alias in (p.name, *p.aliases) if alias}
        self._names = names
        self._pattern = re.compile("|".join(map(re.escape, sorted(names, key=len, reverse=True)))) if names else None

    def find(self, text: str) -> tuple[set[str], str]:
        """The places named in ``text``, and the text with those names taken out."""
        if self._pattern is None:
            return set(), text
        found = {self._names[m.group(0)] for m in self._pattern.finditer(text)}
        return found, self._pattern.sub(" ", text)

    def ancestors(self, name: str) -> set[str]:
        out, place = set(), self.places.get(name)
        while place is not None and place.within and place.within not in out:
            out.add(place.within)
            place = self.places.get(place.within)
        return out

    def roads_between(self, names: set[str]) -> set[str]:
        return {p.name for p in self.places.values() if len(p.ends) >= 2 and set(p.ends) <= names}


# What a proposal is about: cue words per topic. Longest cue first, so that 下水管 is drainage
# and not drinking water, and 老年食堂 is care for the elderly and not a school canteen.
TOPICS: dict[str, tuple[str, ...]] = {
    "道路": ("公路", "道路", "路面", "硬化", "拓宽", "沥青", "水泥路", "砂石路", "土路", "泥巴路", "断头路", "通组路",
           "主干道", "连接路", "修路", "路太窄", "进村的路"),
    "照明": ("路灯", "亮化", "照明", "太黑"),
    "饮水": ("自来水", "饮水", "吃水难", "水压", "停水", "水质", "管网水", "供水", "蓄水池", "水源", "缺水", "水垢", "井都干"),
    "排水": ("排水", "内涝", "积水", "下水道", "雨污"),
    "环卫": ("垃圾",),
    "厕所": ("厕所", "公厕"),
    "交通安全": ("红绿灯", "信号灯", "斑马线", "减速带", "护栏", "交通疏导", "交通安全"),
    "操场": ("操场", "跑道", "塑胶"),
    "食堂": ("食堂",),
    "教学楼": ("教室", "教学楼", "大班额"),
    "围墙": ("围墙",),
    "幼儿园": ("幼儿园", "入园"),
    "医疗": ("卫生室", "卫生院", "医院", "看病", "医疗", "诊室", "病房", "床位", "中医馆", "CT"),
    "养老": ("养老", "老年食堂", "助餐", "敬老院", "日间照料"),
    "文体": ("文化广场", "健身", "广场舞", "文化礼堂", "活动中心", "步道", "锻炼身体"),
    "公园": ("公园", "绿地", "遛弯"),
    "电梯": ("电梯", "楼梯"),
    "屋顶": ("屋顶", "房顶", "防水"),
    "外墙": ("外墙", "墙皮"),
    "市场": ("农贸市场", "菜市场", "摊位"),
    "停车": ("停车", "车位"),
    "桥梁": ("危桥", "桥梁", "便民桥", "漫水桥", "渡口", "渡船", "对岸", "过河"),
    "堤防": ("大堤", "河堤", "堤防", "防汛", "除险"),
    "清淤": ("清淤",),
    "灌溉": ("灌溉", "渠道", "水渠", "沟渠"),
    "通信": ("信号", "基站", "宽带"),
    "电力": ("电压", "变压器", "农网", "停电"),
    "燃气": ("燃气", "天然气", "液化气"),
    "公交": ("公交", "班车", "候车亭", "站台", "没有车坐", "摩的"),
    "征迁": ("征地", "拆迁", "征迁"),
    "办公": ("办公楼", "公务用车"),
    "便民服务": ("党群服务中心", "便民服务", "办事"),
    "绿化": ("绿化",),
    "产业": ("产业路", "物流园"),
}
_CUES = {cue: topic for topic, cues in TOPICS.items() for cue in cues}
_CUE_PATTERN = re.compile("|".join(map(re.escape, sorted(_CUES, key=len, reverse=True))))

# Words that say nothing about what is asked.
STOPWORDS = frozenset((
    "的", "了", "是", "在", "和", "有", "就", "要", "都", "也", "还", "我们", "我", "你", "他", "她", "它", "这", "那", "个",
    "一", "不", "没", "没有", "很", "太", "能", "能不能", "希望", "建议", "请", "吧", "呢", "啊", "把", "被", "给", "让", "到", "去",
    "从", "上", "下", "里", "对", "与", "及", "等", "又", "再", "只", "只能", "好", "多", "好多", "每", "每次", "天天", "村", "社区",
    "镇", "群众", "居民", "村民", "老百姓", "问题", "情况", "工程", "项目", "建设", "改造", "提升", "尽快", "早日", "早点",
    "一下", "一些", "这个", "那个", "这边", "那边",
))
_WORD = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]+")


@dataclass(frozen=True)
class Reading:
    """One proposal as the detector reads it."""

    id: str
    places: frozenset[str]  # named, with the places they lie in
    leaves: frozenset[str]  # the most specific places named
    topics: frozenset[str]
    words: Counter = field(compare=False)


def read(id_: str, title: str, content: str = "", location: str = "", gazetteer: Gazetteer | None = None) -> Reading:
    gazetteer = gazetteer or Gazetteer(())
    text = f"{title} {title} {content}"  # the title says it twice: it is what the proposer chose to lead with
    named, rest = gazetteer.find(text)
    in_location, _ = gazetteer.find(location)
    # What is asked is in the title; the content often tells the complaint around it (看病 in
    # "去镇上没有车坐: 老人看病只能打摩的" is why a bus is wanted, not a clinic).
    topics = _topics(gazetteer.find(title)[1]) or _topics(rest)
    if not topics or "道路" in topics:  # 王庄到马庙的公路: the road between the two villages
        named |= gazetteer.roads_between(named)
    if not topics:  # "老菜场太脏太乱了", "王马路太烂了": the place says what it is about
        topics = set().union(*(_place_topics(gazetteer.places[n]) for n in named)) if named else set()
    named |= in_location
    parents = set().union(*(gazetteer.ancestors(n) for n in named)) if named else set()
    words = Counter(w for w in rjieba.cut(" ".join(_WORD.findall(rest))) if w.strip() and w not in STOPWORDS)
    return Reading(id_, frozenset(named | parents), frozenset(named - parents), frozenset(topics), words)


def _topics(text: str) -> set[str]:
    return {_CUES[m.group(0)] for m in _CUE_PATTERN.finditer(text)}


PLACE_TOPICS = {"road": "道路", "levee": "堤防"}


def _place_topics(place: Place) -> set[str]:
    return _topics(place.name) | ({PLACE_TOPICS[place.kind]} if place.kind in PLACE_TOPICS else set())


@dataclass(frozen=True)
class Weights:
    text: float = 0.4
    topic: float = 0.3
    place: float = 0.3
    elsewhere: float = 0.2  # what is left of the score when the two name different places


@dataclass(frozen=True)
class Score:
    total: float
    text: float
    topic: float | None  # None: one of them names no topic
    place: float | None  # None: one of them names no place


def place_similarity(a: Reading, b: Reading) -> float | None:
    """1: the same place; 0.7: one lies in the other; 0: different places; None: unknown."""
    if not a.places or not b.places:
        return None
    if a.leaves & b.leaves:
        return 1.0
    if a.leaves & b.places or b.leaves & a.places:
        return 0.7
    return 0.0


def topic_similarity(a: Reading, b: Reading) -> float | None:
    if not a.topics or not b.topics:
        return None
    return len(a.topics & b.topics) / len(a.topics | b.topics)


class Corpus:
    """The year's proposals of one jurisdiction: word rarity (IDF) is learned from them."""

    def __init__(self, readings: Sequence[Reading]) -> None:
        self.readings = list(readings)
        df = Counter(w for r in self.readings for w in r.words)
        n = len(self.readings) or 1
        self.idf = {w: math.log((1 + n) / (1 + d)) + 1 for w, d in df.items()}
        self._vectors = {r.id: self._vector(r) for r in self.readings}

    def _vector(self, r: Reading) -> dict[str, float]:
        v = {w: c * self.idf.get(w, math.log(1 + len(self.readings)) + 1) for w, c in r.words.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / norm for w, x in v.items()}

    def text_similarity(self, a: Reading, b: Reading) -> float:
        va = self._vectors.get(a.id) or self._vector(a)
        vb = self._vectors.get(b.id) or self._vector(b)
        if len(va) > len(vb):
            va, vb = vb, va
        return sum(x * vb.get(w, 0.0) for w, x in va.items())

    def score(self, a: Reading, b: Reading, weights: Weights = Weights()) -> Score:
        text, topic, place = self.text_similarity(a, b), topic_similarity(a, b), place_similarity(a, b)
        total = (weights.text * text + weights.topic * (0.5 if topic is None else topic)
                 + weights.place * (0.5 if place is None else place))
        if place == 0.0:
            total *= weights.elsewhere
        return Score(round(total, 4), round(text, 4), topic, place)

    def similar_to(self, target: Reading, threshold: float = DEFAULT_THRESHOLD,
                   weights: Weights = Weights()) -> list[tuple[Reading, Score]]:
        """The likely duplicates of ``target`` among the corpus, best first."""
        scored = [(r, self.score(target, r, weights)) for r in self.readings if r.id != target.id]
        return sorted(((r, s) for r, s in scored if s.total >= threshold), key=lambda rs: -rs[1].total)

    def pairs(self, threshold: float = DEFAULT_THRESHOLD, weights: Weights = Weights()) -> list[tuple[Reading, Reading, Score]]:
        """Every likely duplicate pair of the corpus, best first."""
        out = []
        for i, a in enumerate(self.readings):
            for b in self.readings[i + 1:]:
                s = self.score(a, b, weights)
                if s.total >= threshold:
                    out.append((a, b, s))
        return sorted(out, key=lambda t: -t[2].total)

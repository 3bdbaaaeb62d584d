"""One part of the similarity check (a notebook's code, or one written answer) for a whole class, with copydetect.

copydetect implements MOSS's winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003): code is
tokenized and filtered (names become V, F or O, strings S, comments and spaces dropped, so renamed
variables do not hide a copy), every ``k``-character substring is hashed, and a window of ``w``
hashes keeps its smallest: any match of ``k + w - 1`` characters or more is guaranteed to share a
fingerprint. Fingerprints of the boilerplate (the release's starter code, the instructor's
solution) are removed first, so given code never counts. Order does not matter: cells or
functions moved around still share their fingerprints.

:func:`compare_part` compares one part and returns plain rows (copydetect hashes with Python's
``hash``, which differs between processes: one part's fingerprints are all made in one process).
"""
from __future__ import annotations

import io
import itertools
from dataclasses import dataclass, field

import numpy as np

K = 25           # copydetect's noise threshold: the shortest match (filtered characters) that counts
WINDOW = 4       # winnowing window: every match of K + WINDOW - 1 = 28 characters or more is found
MIN_OVERLAP = 80  # filtered characters a pair must share to be flagged (a few statements, not one idiom)


@dataclass
class Part:
    """One part's documents: ``texts`` ``{student: text}``; ``boilerplate`` texts whose fingerprints never
    count; ``reference`` the instructor's solution (or reference answer), compared with each student too."""

    kind: str                     # "code" (filtered as Python) or "text" (compared as it is)
    name: str                     # the notebook (code) or the answer's grade_id (text)
    notebook: str
    texts: dict[str, str]
    boilerplate: list[str] = field(default_factory=list)
    reference: str = ""
    reference_counts: bool = False  # False: the reference's fingerprints are boilerplate between students too


@dataclass
class PartResult:
    """``pairs``: one dict per pair compared exactly (student_a, student_b, similarity_a, similarity_b,
    overlap, shared); ``slices``: for pairs at or above the threshold, both students' text with the matching
    slices highlighted (HTML); ``reference``: student, share of their fingerprints found in the reference;
    ``pairs_total``: pairs of students with something to compare; ``candidates``: pairs compared exactly;
    ``histogram``: every pair by MOSS's measure."""

    kind: str
    name: str
    notebook: str
    pairs: list[dict]
    slices: dict[tuple[str, str], tuple[str, str]]
    reference: list[dict]
    pairs_total: int
    candidates: int
    histogram: list[int]          # pairs by MOSS's measure (shared fingerprints over the smaller one's), in BINS


BINS = np.linspace(0, 1, 21)

def fingerprint(text: str, kind: str, boilerplate=None):
    from copydetect import CodeFingerprint

    if kind == "code":
        return CodeFingerprint("answer.py", K, WINDOW, boilerplate, fp=io.StringIO(text), language="python")
    return CodeFingerprint("answer.txt", K, WINDOW, boilerplate, filter=False, fp=io.StringIO(text))


def boilerplate_hashes(texts: list[str], kind: str) -> np.ndarray:
    """Every k-gram hash of ``texts`` (no winnowing: all of the given text is boilerplate)."""
    from copydetect import CodeFingerprint

    hashes = [np.fromiter(CodeFingerprint("b.py" if kind == "code" else "b.txt", K, 1, fp=io.StringIO(t),
                                          filter=kind == "code", language="python" if kind == "code" else None).hashes,
                          dtype=np.int64) for t in texts if t.strip()]
    return np.unique(np.concatenate(hashes)) if hashes else np.array([], dtype=np.int64)


def shared_counts(fingerprints: list) -> np.ndarray:
    """[n, n] fingerprints shared by each pair of documents (one matrix product over the hashes two or more share)."""
    n = len(fingerprints)
    owners: dict[int, list[int]] = {}
    for i, fp in enumerate(fingerprints):
        for h in fp.hashes:
            owners.setdefault(h, []).append(i)
    columns = [docs for docs in owners.values() if len(docs) > 1]
    incidence = np.zeros((n, len(columns)), dtype=np.float32)
    for j, docs in enumerate(columns):
        incidence[docs, j] = 1.0
    return incidence @ incidence.T


def compare_part(part: Part, threshold: float, floor: float) -> PartResult:
    """Every pair of the part's students: MOSS's measure (shared fingerprints over each one's) for all pairs,
    copydetect's exact comparison (shared tokens, the slices) for pairs whose measure reaches ``floor``."""
    from copydetect import compare_files
    from copydetect.utils import highlight_overlap

    base = boilerplate_hashes(part.boilerplate, part.kind)
    reference = set(boilerplate_hashes([part.reference], part.kind).tolist()) if part.reference.strip() else set()
    students = sorted(s for s, t in part.texts.items() if t.strip())
    prints = [fingerprint(part.texts[s], part.kind, base) for s in students]
    # The instructor's solution: reported per student, and not counted between students.
    ref_rows = [{"student": s, "share": len(fp.hashes & reference) / len(fp.hashes), "fingerprints": len(fp.hashes)}
                for s, fp in zip(students, prints) if fp.hashes and reference]
    if reference and not part.reference_counts:
        prints = [without(fp, reference) for fp in prints]
    keep = [i for i, fp in enumerate(prints) if fp.hashes]
    students, prints = [students[i] for i in keep], [prints[i] for i in keep]
    shared = shared_counts(prints)
    sizes = np.array([len(fp.hashes) for fp in prints], dtype=np.float32)
    upper = np.triu_indices(len(prints), 1)
    measure = shared[upper] / np.minimum.outer(sizes, sizes)[upper] if len(prints) > 1 else np.array([])
    pairs, slices, candidates = [], {}, 0
    for i, j in itertools.combinations(range(len(prints)), 2):
        if shared[i, j] == 0 or shared[i, j] / min(sizes[i], sizes[j]) < floor:
            continue
        candidates += 1
        overlap, (sim_a, sim_b), (slices_a, slices_b) = compare_files(prints[i], prints[j])
        pairs.append({"student_a": students[i], "student_b": students[j], "similarity_a": float(sim_a),
                      "similarity_b": float(sim_b), "overlap": int(overlap), "shared": int(shared[i, j])})
        if max(sim_a, sim_b) >= threshold and overlap >= MIN_OVERLAP:
            slices[students[i], students[j]] = (
                highlight_overlap(prints[i].raw_code, slices_a, "<span class='highlight-red'>", "</span>", escape_html=True)[0],
                highlight_overlap(prints[j].raw_code, slices_b, "<span class='highlight-green'>", "</span>", escape_html=True)[0])
    return PartResult(part.kind, part.name, part.notebook, pairs, slices, ref_rows,
                      len(prints) * (len(prints) - 1) // 2, candidates, np.histogram(measure, BINS)[0].tolist())


def without(fp, hashes: set):
    """``fp`` with the fingerprints in ``hashes`` removed (as copydetect removes boilerplate)."""
    from copydetect.utils import get_token_coverage

    fp.hashes = fp.hashes - hashes
    fp.hash_idx = {h: idx for h, idx in fp.hash_idx.items() if h not in hashes}
    fp.token_coverage = get_token_coverage(fp.hash_idx, fp.k, len(fp.filtered_code))
    return fp
